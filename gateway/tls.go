package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// s2sTLSConfigs builds the TLS configurations of the S2S edge: server is
// offered with STARTTLS to local servers that connect (nil without
// s2s.cert_file); client is used for STARTTLS on every connection the
// gateway opens to a local server, delivery streams and dialback
// verification alike (nil with neither s2s.cert_file nor s2s.ca_file).
//
// With s2s.ca_file, local servers whose client certificates it verifies
// for their domain are offered SASL EXTERNAL (server.ClientCAs).
//
// The client presents the s2s.cert_file certificate when it is valid for
// the remote domain the stream comes from, and then authenticates with SASL
// EXTERNAL where the local server offers it. It verifies the local
// server's certificate against s2s.ca_file when set; without it, local
// servers are authenticated by dialback alone and TLS only keeps the local
// hop private.
func s2sTLSConfigs(cfg *config.Config) (server, client *tls.Config, err error) {
	var certs []tls.Certificate
	if cfg.S2S.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.S2S.CertFile, cfg.S2S.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("gateway: s2s.cert_file %s: %w", cfg.S2S.CertFile, err)
		}
		certs = append(certs, cert)
		server = &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	if cfg.S2S.CertFile == "" && cfg.S2S.CAFile == "" {
		return server, nil, nil
	}
	client = &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	if cfg.S2S.CAFile == "" {
		client.InsecureSkipVerify = true // dialback authenticates the local server
		return server, client, nil
	}
	pool, err := config.LoadCAFile(cfg.S2S.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: s2s.ca_file: %w", err)
	}
	client.RootCAs = pool
	if server != nil {
		// Local servers' client certificates: SASL EXTERNAL for those
		// valid for their domain (s2s.ServerConfig.ClientCAs).
		server.ClientCAs = pool
	}
	return server, client, nil
}

// clientCAs is the pool local servers' client certificates are checked
// against (nil: no SASL EXTERNAL offered).
func clientCAs(server *tls.Config) *x509.CertPool {
	if server == nil {
		return nil
	}
	return server.ClientCAs
}
