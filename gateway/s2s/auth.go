package s2s

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// NSSASL is the SASL namespace (RFC 6120 §6).
const NSSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// certFor returns the first certificate in certs whose leaf is valid for
// domain (its subjectAltName dNSName or, for old certificates, the common
// name), or nil.
func certFor(certs []tls.Certificate, domain string) *tls.Certificate {
	for i := range certs {
		c := &certs[i]
		leaf := c.Leaf
		if leaf == nil {
			if len(c.Certificate) == 0 {
				continue
			}
			var err error
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				continue
			}
		}
		if leaf.VerifyHostname(domain) == nil {
			return c
		}
	}
	return nil
}

// offersExternal reports whether stream features offer SASL EXTERNAL.
func offersExternal(feats *node) bool {
	mechs := feats.child(NSSASL, "mechanisms")
	if mechs == nil {
		return false
	}
	for _, m := range mechs.Children {
		if m.Name.Space == NSSASL && m.Name.Local == "mechanism" && m.Text == "EXTERNAL" {
			return true
		}
	}
	return false
}

// saslExternal authenticates the stream as from with SASL EXTERNAL
// (XEP-0178): the authorization identity is our domain, which the TLS
// client certificate must cover. It reports whether the peer accepted;
// a refusal (<failure/>) is not an error: the stream stays open for
// dialback.
func saslExternal(conn net.Conn, rd *xmlReader, from, to string) (bool, error) {
	auth := "<auth xmlns='" + NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte(from)) + "</auth>"
	if _, err := conn.Write([]byte(auth)); err != nil {
		return false, fmt.Errorf("s2s: SASL EXTERNAL with %s: %w", to, err)
	}
	for {
		el, err := rd.next()
		if err != nil {
			return false, fmt.Errorf("s2s: SASL EXTERNAL with %s: %w", to, err)
		}
		n := el.Node
		if n == nil {
			return false, fmt.Errorf("s2s: SASL EXTERNAL with %s: got a <%s/> stanza", to, el.Stanza.Name)
		}
		switch {
		case n.Name.Space == NSSASL && n.Name.Local == "success":
			return true, nil
		case n.Name.Space == NSSASL && n.Name.Local == "failure":
			return false, nil
		case n.Name.Space == NSSASL && n.Name.Local == "challenge":
			// EXTERNAL has no challenge; answer with an empty response
			// as RFC 6120 §6.4.3 allows, once.
			if _, err := conn.Write([]byte("<response xmlns='" + NSSASL + "'/>")); err != nil {
				return false, fmt.Errorf("s2s: SASL EXTERNAL with %s: %w", to, err)
			}
		case n.Name.Space == NSStream && n.Name.Local == "error":
			return false, fmt.Errorf("s2s: SASL EXTERNAL with %s: %w", to, peerStreamError(n))
		default:
			return false, fmt.Errorf("s2s: SASL EXTERNAL with %s: unexpected <%s xmlns=%q>", to, n.Name.Local, n.Name.Space)
		}
	}
}

// ErrNoRouteBack means a local server answered our db:result with an error
// saying it could not reach the authoritative server of our domain, which
// is this gateway: its route back (SRV record, connect override) for that
// domain does not lead here.
var ErrNoRouteBack = errors.New("the server could not route back to the gateway")

// dialbackRefused is the error for a db:result of type 'error' that a
// receiving server sent for our stream from -> to.
func dialbackRefused(from, to string, n *node) error {
	cond := dbErrorCond(n)
	switch cond {
	case CondRemoteServerNotFound, CondRemoteServerTimeout:
		return fmt.Errorf("s2s: dialback with %s: %w for %s (error %s): check its SRV record or connect override for %s points at this gateway's s2s.listen address",
			to, ErrNoRouteBack, from, cond, from)
	}
	return fmt.Errorf("s2s: dialback with %s: %w (error %s)", to, ErrDialbackInvalid, cond)
}

// verifyDialError is the error when the dialback verification connection
// to the server authoritative for domain, at addr, cannot be opened.
func verifyDialError(domain, addr string, err error) error {
	return fmt.Errorf("s2s: dialback verification: cannot connect back to %s's server at %s (check local_domains): %w", domain, addr, err)
}

// errNoStream marks a connection closed before it sent a stream header:
// a health check or port scan, logged at debug only.
var errNoStream = errors.New("no stream header")

func noStream(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", err, errNoStream)
	}
	return err
}

// externalOK reports whether an inbound stream may be offered SASL
// EXTERNAL for from: the peer's TLS client certificate verifies against
// ClientCAs for that domain (any extended key usage: public CAs no longer
// issue clientAuth for servers).
func (s *Server) externalOK(conn net.Conn, from string) bool {
	if s.cfg.ClientCAs == nil || from == "" {
		return false
	}
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return false
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: s.cfg.ClientCAs, Intermediates: inter, DNSName: from,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// acceptExternal answers a SASL element on an inbound stream (from -> to)
// before it is authenticated: <auth mechanism='EXTERNAL'/> succeeds when
// EXTERNAL was offered (externalOK) and the authorization identity is from
// (or empty, meaning from). It reports whether the pair is now
// authenticated; a refusal (<failure/>) leaves the stream open for
// dialback.
func (in *inStream) acceptExternal(conn net.Conn, n *node, offered bool, from, to string) (bool, error) {
	cond := ""
	switch {
	case n.Name.Local != "auth":
		cond = "malformed-request"
	case !offered || n.attr("mechanism") != "EXTERNAL":
		cond = "invalid-mechanism"
	default:
		id := from
		if t := strings.TrimSpace(n.Text); t != "" && t != "=" {
			b, err := base64.StdEncoding.DecodeString(t)
			if err != nil {
				cond = "incorrect-encoding"
			}
			id = string(b)
		}
		if cond == "" && Domain(id) != from {
			cond = "invalid-authzid"
		}
	}
	if cond != "" {
		in.srv.event(Event{Kind: "in-refused", Local: to, Remote: from, Addr: in.addr, Reason: "sasl-" + cond})
		if _, err := conn.Write([]byte("<failure xmlns='" + NSSASL + "'><" + cond + "/></failure>")); err != nil {
			return false, fmt.Errorf("s2s: write: %w", err)
		}
		return false, nil
	}
	if _, err := conn.Write([]byte("<success xmlns='" + NSSASL + "'/>")); err != nil {
		return false, fmt.Errorf("s2s: write: %w", err)
	}
	in.mu.Lock()
	in.verified[pair{from: from, to: to}] = true
	in.mu.Unlock()
	in.srv.event(Event{Kind: "in-auth", Local: to, Remote: from, Addr: in.addr, Reason: "sasl-external"})
	return true, nil
}
