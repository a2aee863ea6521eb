package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

// startControllerManager parses args like the kube-controller-manager command
// line and runs it (without leader election) in a goroutine until ctx is done.
// The returned channel receives the result of the run and is then closed.
func startControllerManager(ctx context.Context, args []string) (<-chan error, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range s.Flags(all, disabled, aliases).FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	c, err := s.Config(all, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager config: %w", err)
	}

	done := make(chan error, 1)
	go func() {
		defer close(done)
		done <- kcmapp.Run(ctx, c.Complete())
	}()
	return done, nil
}
