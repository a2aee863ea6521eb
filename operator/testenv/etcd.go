package main

import (
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs a single-member etcd inside this process, listening on
// plain HTTP on the loopback address only.
func startEtcd(dataDir, host string, clientPort, peerPort int, logLevel string, noFsync bool) (*embed.Etcd, string, error) {
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("%s:%d", host, clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("%s:%d", host, peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "arena-testenv"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.InitialClusterToken = "arena-testenv"
	cfg.Logger = "zap"
	cfg.LogLevel = logLevel
	cfg.LogOutputs = []string{"stderr"}
	cfg.UnsafeNoFsync = noFsync
	// Keep the database small for a long-running dev cluster.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "5m"
	cfg.QuotaBackendBytes = 2 * 1024 * 1024 * 1024
	cfg.SnapshotCount = 10000

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, "", fmt.Errorf("etcd not ready after 60s")
	}
	return e, clientURL.String(), nil
}
