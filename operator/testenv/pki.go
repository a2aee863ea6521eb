package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"
)

// pki holds the file paths of everything the control plane needs. The CA and
// the service-account key are kept across restarts (tokens and secrets stored
// in etcd stay valid); leaf certificates are re-issued on every start.
type pki struct {
	dir string

	caCert, caKey        string
	servingCert, servKey string
	adminCert, adminKey  string
	kcmCert, kcmKey      string
	saKey, saPub         string
	kcmKubeconfig        string

	ca       *x509.Certificate
	caSigner crypto.Signer
}

const certValidity = 10 * 365 * 24 * time.Hour

func newPKI(dir string) *pki {
	j := func(n string) string { return filepath.Join(dir, n) }
	return &pki{
		dir:           dir,
		caCert:        j("ca.crt"),
		caKey:         j("ca.key"),
		servingCert:   j("apiserver.crt"),
		servKey:       j("apiserver.key"),
		adminCert:     j("admin.crt"),
		adminKey:      j("admin.key"),
		kcmCert:       j("controller-manager.crt"),
		kcmKey:        j("controller-manager.key"),
		saKey:         j("sa.key"),
		saPub:         j("sa.pub"),
		kcmKubeconfig: j("controller-manager.kubeconfig"),
	}
}

// ensure creates (or reuses) the CA and service-account key and issues the
// serving and client certificates.
func (p *pki) ensure(bindIP net.IP, serviceIP net.IP) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if err := p.loadOrCreateCA(); err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	if err := p.loadOrCreateSAKey(); err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	ips := []net.IP{bindIP, net.ParseIP("127.0.0.1"), serviceIP}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if err := p.issue(p.servingCert, p.servKey, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth, ips, dns); err != nil {
		return fmt.Errorf("serving cert: %w", err)
	}
	if err := p.issue(p.adminCert, p.adminKey, "arena-admin", []string{"system:masters"}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return fmt.Errorf("admin cert: %w", err)
	}
	// system:kube-controller-manager is bound to its ClusterRole by the RBAC bootstrap policy.
	if err := p.issue(p.kcmCert, p.kcmKey, "system:kube-controller-manager", nil, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return fmt.Errorf("controller-manager cert: %w", err)
	}
	return nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func writeKey(path string, key crypto.Signer) error {
	b, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func (p *pki) loadOrCreateCA() error {
	certPEM, errC := os.ReadFile(p.caCert)
	key, errK := keyutil.PrivateKeyFromFile(p.caKey)
	if errC == nil && errK == nil {
		block, _ := pem.Decode(certPEM)
		if block == nil {
			return errors.New("ca.crt is not PEM")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return errors.New("ca.key is not a signing key")
		}
		p.ca, p.caSigner = c, signer
		return nil
	}
	k, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "arena-testenv-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if err := writeKey(p.caKey, k); err != nil {
		return err
	}
	if err := writeCert(p.caCert, der); err != nil {
		return err
	}
	p.ca, p.caSigner = c, k
	return nil
}

func (p *pki) loadOrCreateSAKey() error {
	if _, err := keyutil.PrivateKeyFromFile(p.saKey); err == nil {
		if _, err := os.Stat(p.saPub); err == nil {
			return nil
		}
	}
	k, err := newKey()
	if err != nil {
		return err
	}
	if err := writeKey(p.saKey, k); err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

func (p *pki) issue(certPath, keyPath, cn string, orgs []string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) error {
	k, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, k.Public(), p.caSigner)
	if err != nil {
		return err
	}
	if err := writeKey(keyPath, k); err != nil {
		return err
	}
	return writeCert(certPath, der)
}

// kubeconfig builds a self-contained kubeconfig (CA and client credentials embedded).
func (p *pki) kubeconfig(server, user, certPath, keyPath string) (*clientcmdapi.Config, error) {
	ca, err := os.ReadFile(p.caCert)
	if err != nil {
		return nil, err
	}
	crt, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	const name = "arena-testenv"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = name
	return cfg, nil
}

// writeKubeconfigAtomic writes cfg to path via a temp file + rename, so a
// reader never sees a half-written file.
func writeKubeconfigAtomic(cfg *clientcmdapi.Config, path string) error {
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
