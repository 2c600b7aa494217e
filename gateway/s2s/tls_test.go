package s2s

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

// testTLS returns a server config with a self-signed certificate for
// a.test and b.test and a client config that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "isthmus test"},
		DNSNames:     []string{"a.test", "b.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

func TestStartTLS(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	pr := newPoolRig(t, Limits{})
	defer pr.stop()
	pr.a.cfg.TLS = srvTLS
	pr.b.cfg.TLS = srvTLS
	pr.b.cfg.VerifyTLS = cliTLS
	pr.pool.cfg.TLS = cliTLS
	pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "over tls"))
	pr.sink.wait(t, "delivery", func() bool { return len(pr.sink.got) == 1 })
	if !strings.Contains(string(pr.sink.got[0].Raw), "over tls") {
		t.Errorf("got %s", pr.sink.got[0].Raw)
	}
	pr.sink.mu.Lock()
	defer pr.sink.mu.Unlock()
	if !slices.ContainsFunc(pr.sink.events, func(e Event) bool { return e.Kind == "in-open" && e.Reason == "tls" }) {
		t.Errorf("no in-open over TLS: %+v", pr.sink.events)
	}
	pr.psink.mu.Lock()
	defer pr.psink.mu.Unlock()
	if !slices.ContainsFunc(pr.psink.events, func(e Event) bool { return e.Kind == "out-auth" && e.Reason == "tls" }) {
		t.Errorf("no out-auth over TLS: %+v", pr.psink.events)
	}
}

func TestStartTLSNotUsedWithoutClientConfig(t *testing.T) {
	srvTLS, _ := testTLS(t)
	pr := newPoolRig(t, Limits{})
	defer pr.stop()
	pr.b.cfg.TLS = srvTLS
	pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "plain"))
	pr.sink.wait(t, "delivery", func() bool { return len(pr.sink.got) == 1 })
	pr.psink.mu.Lock()
	defer pr.psink.mu.Unlock()
	if slices.ContainsFunc(pr.psink.events, func(e Event) bool { return e.Kind == "out-auth" && e.Reason == "tls" }) {
		t.Errorf("TLS used without a client config")
	}
}
