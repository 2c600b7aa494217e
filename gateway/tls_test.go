package gateway

import (
	"crypto/x509"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/internal/testpki"
)

// TestS2STLSConfigs: with a certificate the gateway offers STARTTLS and
// uses TLS on every connection it opens (presenting the certificate, for
// SASL EXTERNAL); with s2s.ca_file it verifies local servers' certificates
// against it, without one it does not (dialback authenticates them).
func TestS2STLSConfigs(t *testing.T) {
	ca, err := testpki.NewCA("gateway test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(t.TempDir(), "gw", "remote.test")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if srv, cli, err := s2sTLSConfigs(&cfg); srv != nil || cli != nil || err != nil {
		t.Fatalf("no certificate: %v %v %v, want no TLS", srv, cli, err)
	}
	cfg.S2S.CertFile, cfg.S2S.KeyFile = files.Cert, files.Key
	srv, cli, err := s2sTLSConfigs(&cfg)
	if err != nil || srv == nil || cli == nil {
		t.Fatalf("certificate: %v %v %v", srv, cli, err)
	}
	if len(cli.Certificates) != 1 || !cli.InsecureSkipVerify {
		t.Errorf("client without ca_file: %d certificates, InsecureSkipVerify %v; want the certificate, no verification", len(cli.Certificates), cli.InsecureSkipVerify)
	}
	cfg.S2S.CAFile = files.CA
	_, cli, err = s2sTLSConfigs(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cli.InsecureSkipVerify || cli.RootCAs == nil {
		t.Fatalf("client with ca_file does not verify")
	}
	leaf, err := x509.ParseCertificate(cli.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cli.RootCAs, DNSName: "remote.test", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the CA from ca_file does not verify a certificate it signed: %v", err)
	}
	cfg.S2S.CAFile = files.Key // no certificate in it
	if _, _, err := s2sTLSConfigs(&cfg); err == nil {
		t.Errorf("a ca_file without certificates was accepted")
	}
}
