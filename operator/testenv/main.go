// Command arena-testenv runs a real, single-process Kubernetes control plane
// for local tests: embedded etcd, kube-apiserver (RBAC, service-account
// tokens, CRDs with CEL validation) and kube-controller-manager (garbage
// collector, namespace, service-account, deployment/replicaset, ...), all
// bound to the loopback address. There is no kubelet, scheduler or network:
// pods are stored but never run.
//
// When the API server is ready (/readyz ok) and the controller manager has
// created the default ServiceAccount, it writes an admin kubeconfig to
// <data-dir>/kubeconfig and prints one line "ready kubeconfig=<path>" to
// stdout. SIGTERM/SIGINT shut everything down cleanly (a second signal exits
// at once).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	utilversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	dataDir        string
	bindAddress    string
	etcdClientPort int
	etcdPeerPort   int
	securePort     int
	serviceCIDR    string
	etcdLogLevel   string
	etcdNoFsync    bool
	readyTimeout   time.Duration
	apiserverArgs  stringList
	kcmArgs        stringList
	showVersion    bool
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	// Own flag set: imported Kubernetes packages register dozens of unrelated
	// flags (cadvisor, ...) on flag.CommandLine.
	fs := flag.NewFlagSet("arena-testenv", flag.ContinueOnError)
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for etcd data, PKI and the admin kubeconfig (required)")
	fs.StringVar(&o.bindAddress, "bind-address", "127.0.0.1", "loopback address every component listens on")
	fs.IntVar(&o.etcdClientPort, "etcd-client-port", 23790, "etcd client port")
	fs.IntVar(&o.etcdPeerPort, "etcd-peer-port", 23800, "etcd peer port")
	fs.IntVar(&o.securePort, "secure-port", 16443, "kube-apiserver HTTPS port")
	fs.StringVar(&o.serviceCIDR, "service-cluster-ip-range", "10.96.0.0/16", "service ClusterIP range (no real networking)")
	fs.StringVar(&o.etcdLogLevel, "etcd-log-level", "warn", "etcd log level (debug, info, warn, error)")
	fs.BoolVar(&o.etcdNoFsync, "etcd-unsafe-no-fsync", false, "disable fsync in etcd (faster, loses data on power loss)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 120*time.Second, "how long to wait for the control plane to become ready")
	fs.Var(&o.apiserverArgs, "apiserver-arg", "extra kube-apiserver flag, e.g. --apiserver-arg=--feature-gates=X=true (repeatable; wins over defaults)")
	fs.Var(&o.kcmArgs, "kcm-arg", "extra kube-controller-manager flag, e.g. --kcm-arg=--controllers=*,-nodelifecycle (repeatable)")
	fs.BoolVar(&o.showVersion, "version", false, "print the Kubernetes version and exit")
	klog.InitFlags(fs) // -v, -vmodule, ... (logs go to stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s --data-dir DIR [flags]\n", os.Args[0])
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.showVersion {
		fmt.Println(utilversion.Get().GitVersion)
		return 0
	}
	if o.dataDir == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	defer klog.Flush()
	if err := serve(o); err != nil {
		klog.ErrorS(err, "arena-testenv failed")
		return 1
	}
	return 0
}

func serve(o options) error {
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	// One instance per data dir: etcd would otherwise block forever on its
	// database lock. The lock is released by the kernel when the process exits.
	lock, err := os.OpenFile(filepath.Join(dataDir, "arena-testenv.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("data dir %s is in use by another arena-testenv: %w", dataDir, err)
	}
	kubeconfigPath := filepath.Join(dataDir, "kubeconfig")
	// A kubeconfig left from an earlier run must not look like "ready".
	if err := os.Remove(kubeconfigPath); err != nil && !os.IsNotExist(err) {
		return err
	}

	bindIP := net.ParseIP(o.bindAddress)
	if bindIP == nil {
		return fmt.Errorf("--bind-address %q is not an IP address", o.bindAddress)
	}
	_, svcNet, err := net.ParseCIDR(o.serviceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cluster-ip-range: %w", err)
	}
	svcIP := make(net.IP, len(svcNet.IP))
	copy(svcIP, svcNet.IP)
	svcIP[len(svcIP)-1]++ // first address: the "kubernetes" service

	// Signals: the first one cancels the root context, a second exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		klog.InfoS("signal received, shutting down", "signal", s.String())
		cancel()
		<-sigs
		klog.InfoS("second signal, exiting immediately")
		klog.Flush()
		os.Exit(1)
	}()

	p := newPKI(filepath.Join(dataDir, "pki"))
	if err := p.ensure(bindIP, svcIP); err != nil {
		return err
	}
	server := "https://" + net.JoinHostPort(o.bindAddress, strconv.Itoa(o.securePort))
	kcmCfg, err := p.kubeconfig(server, "system:kube-controller-manager", p.kcmCert, p.kcmKey)
	if err != nil {
		return err
	}
	if err := writeKubeconfigAtomic(kcmCfg, p.kcmKubeconfig); err != nil {
		return err
	}
	adminCfg, err := p.kubeconfig(server, "arena-admin", p.adminCert, p.adminKey)
	if err != nil {
		return err
	}

	// 1. etcd
	etcd, etcdURL, err := startEtcd(filepath.Join(dataDir, "etcd"), o.bindAddress, o.etcdClientPort, o.etcdPeerPort, o.etcdLogLevel, o.etcdNoFsync)
	if err != nil {
		return err
	}
	defer func() {
		etcd.Close()
		klog.InfoS("etcd stopped")
	}()
	klog.InfoS("etcd ready", "url", etcdURL)

	// 2. kube-apiserver. It gets its own context so that it is stopped
	//    after the controller manager.
	apiCtx, apiCancel := context.WithCancel(context.Background())
	defer apiCancel()
	apiArgs := append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + o.bindAddress,
		"--advertise-address=" + o.bindAddress,
		"--secure-port=" + strconv.Itoa(o.securePort),
		"--cert-dir=" + p.dir,
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servKey,
		"--client-ca-file=" + p.caCert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + o.serviceCIDR,
		// The lease reconciler would publish 127.0.0.1 as the endpoint of
		// the "kubernetes" service, which Endpoints validation rejects.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}, o.apiserverArgs...)
	apiDone, err := startAPIServer(apiCtx, apiArgs)
	if err != nil {
		return err
	}
	stopAPIServer := func() {
		apiCancel()
		select {
		case err := <-apiDone:
			if err != nil {
				klog.ErrorS(err, "kube-apiserver stopped with error")
			} else {
				klog.InfoS("kube-apiserver stopped")
			}
		case <-time.After(60 * time.Second):
			klog.InfoS("kube-apiserver did not stop within 60s")
		}
	}

	restCfg, err := clientcmd.NewDefaultClientConfig(*adminCfg, nil).ClientConfig()
	if err != nil {
		stopAPIServer()
		return err
	}
	restCfg.Timeout = 10 * time.Second
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		stopAPIServer()
		return err
	}

	deadline := time.Now().Add(o.readyTimeout)
	if err := waitFor(ctx, deadline, apiDone, "kube-apiserver /readyz", func() (bool, error) {
		var code int
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
		return code == 200, nil
	}); err != nil {
		stopAPIServer()
		return err
	}
	klog.InfoS("kube-apiserver ready", "url", server)

	// 3. kube-controller-manager
	kcmCtx, kcmCancel := context.WithCancel(context.Background())
	defer kcmCancel()
	kcmArgs := append([]string{
		"--kubeconfig=" + p.kcmKubeconfig,
		"--leader-elect=false",
		"--secure-port=0", // no serving endpoint: nothing listens besides etcd and the apiserver
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + p.caCert,
		"--cluster-signing-cert-file=" + p.caCert,
		"--cluster-signing-key-file=" + p.caKey,
		"--controllers=*",
		// The default (/usr/libexec/kubernetes/...) would be created on the host.
		"--flex-volume-plugin-dir=" + filepath.Join(dataDir, "flexvolume"),
	}, o.kcmArgs...)
	kcmDone, err := startControllerManager(kcmCtx, kcmArgs)
	if err != nil {
		stopAPIServer()
		return err
	}
	stopAll := func() {
		kcmCancel()
		select {
		case <-kcmDone:
			klog.InfoS("kube-controller-manager stopped")
		case <-time.After(20 * time.Second):
			klog.InfoS("kube-controller-manager did not stop within 20s")
		}
		stopAPIServer()
	}

	// The default ServiceAccount is created by the serviceaccount controller
	// (and needs the token machinery): a good signal that controllers run.
	if err := waitFor(ctx, deadline, kcmDone, "default ServiceAccount (kube-controller-manager)", func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	}); err != nil {
		stopAll()
		return err
	}

	if err := writeKubeconfigAtomic(adminCfg, kubeconfigPath); err != nil {
		stopAll()
		return err
	}
	defer os.Remove(kubeconfigPath)
	fmt.Printf("ready kubeconfig=%s\n", kubeconfigPath)
	klog.InfoS("control plane ready", "kubeconfig", kubeconfigPath, "version", utilversion.Get().GitVersion)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-apiDone:
		runErr = fmt.Errorf("kube-apiserver exited: %v", err)
		apiDone = closedErrChan()
	case err := <-kcmDone:
		runErr = fmt.Errorf("kube-controller-manager exited: %v", err)
		kcmDone = closedErrChan()
	case err := <-etcd.Err():
		runErr = fmt.Errorf("etcd failed: %v", err)
	}
	stopAll()
	return runErr
}

func closedErrChan() <-chan error {
	c := make(chan error)
	close(c)
	return c
}

// waitFor polls cond every 250ms until it is true, the deadline passes, the
// component's done channel fires or ctx is cancelled.
func waitFor(ctx context.Context, deadline time.Time, done <-chan error, what string, cond func() (bool, error)) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for %s", what)
		case err := <-done:
			return fmt.Errorf("component exited while waiting for %s: %v", what, err)
		case <-t.C:
		}
	}
}
