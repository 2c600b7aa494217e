package emu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quic-go/quic-go"
)

func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"emu"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"emu"}}
	client = &tls.Config{RootCAs: pool, ServerName: "emu", NextProtos: []string{"emu"}}
	return server, client
}

// TestQUICOverPacketPipe runs a QUIC handshake and a 4 KB echo fully
// in-process over a 9600 bit/s link in virtual time.
func TestQUICOverPacketPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, ct := testTLS(t)
		l := NewLink(profile(t, "vhf-9600,loss=0"), 1)
		defer l.Close()
		pa, pb := l.PacketPipe()
		qc := &quic.Config{HandshakeIdleTimeout: time.Minute, MaxIdleTimeout: time.Minute}
		ln, err := quic.Listen(pb, st, qc)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			defer c.CloseWithError(0, "")
			s, err := c.AcceptStream(context.Background())
			if err != nil {
				return
			}
			io.Copy(s, s)
			s.Close()
			<-c.Context().Done() // the client closes
		}()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := quic.Dial(ctx, pa, pb.LocalAddr(), ct, qc)
		if err != nil {
			t.Fatal(err)
		}
		hs := time.Since(start)
		s, err := c.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 4096)
		s.Write(msg)
		s.Close()
		got, err := io.ReadAll(s)
		if err != nil || len(got) != len(msg) {
			t.Fatalf("echo %d bytes, %v", len(got), err)
		}
		total := time.Since(start)
		t.Logf("handshake %v, echo done %v; stats %+v", hs, total, l.Stats())
		// The client's first flight is at least 1200 bytes: 1 s at 9600 bit/s.
		if hs < time.Second {
			t.Errorf("handshake took %v, want ≥ 1 s at 9600 bit/s", hs)
		}
		// 4 KB each way is ≥ 3.4 s of serialization per direction.
		if total < hs+3*time.Second {
			t.Errorf("echo took %v after the handshake, too fast for 9600 bit/s", total-hs)
		}
		c.CloseWithError(0, "")
		<-served
		ln.Close()
		synctest.Wait()
	})
}
