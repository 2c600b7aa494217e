package s2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// ServerConfig configures a Server (the receiving side of S2S streams).
type ServerConfig struct {
	Hosts   func(domain string) bool                     // domains this server answers for (stream 'to'); others -> <host-unknown/>
	Resolve func(domain string) (addr string, err error) // S2S address of a domain's authoritative server, used to verify dialback (db:verify) for inbound streams
	Secret  string                                       // dialback secret (XEP-0185); also answers db:verify for keys our Pool gave out
	TLS     *tls.Config                                  // nil: no STARTTLS offered
	Limits  Limits
	// Deliver receives each stanza on a stream whose (from-domain,
	// to-domain) pair has been verified; from/to are checked first. It is
	// called from the stream's reader goroutine: it must not block long.
	Deliver func(st Stanza)
	Logger  *slog.Logger
	Events  func(Event) // may be nil
	Dial    Dialer      // for dialback verification connections; nil: net.Dialer
	// ClientCAs, if set with TLS, are the CAs local servers' client
	// certificates are checked against after STARTTLS: a stream whose
	// certificate is valid for its 'from' domain is offered SASL EXTERNAL
	// (XEP-0178) besides dialback. A certificate that does not verify
	// does not fail the handshake; it only gets no EXTERNAL.
	ClientCAs *x509.CertPool
	// VerifyTLS, if set, is used for STARTTLS on verification connections
	// (its certificate valid for the receiving domain, if any, is the
	// client certificate). With RequireTLS, a verification connection
	// whose peer offers no STARTTLS fails.
	VerifyTLS *tls.Config

	// Peers, if set, says which originating domains may authenticate
	// (the stream header's 'from' and db:result's 'from'); any other gets
	// <invalid-from/> at once, without a dialback verification.
	Peers func(domain string) bool
	// Allow, if set, says which source addresses may connect; any other
	// gets <policy-violation/> before its stream header is read.
	Allow func(addr net.Addr) bool
	// RequireTLS refuses dialback before STARTTLS (<policy-violation/>);
	// STARTTLS is then offered as <required/>. Needs TLS.
	RequireTLS bool
	// Reject receives the error reply to a stanza from an authenticated
	// peer that is refused with a stanza error rather than a stream error
	// (a malformed 'to' JID: jid-malformed, from one of our domains the
	// sender is verified for; over a limit: policy-violation; not
	// namespace-well-formed XML: bad-request), to be sent back to the
	// sender. May be nil.
	Reject func(reply Stanza)
}

// Server accepts S2S streams and authenticates them with dialback.
type Server struct {
	cfg ServerConfig
	lim Limits
	log *slog.Logger

	mu    sync.Mutex     // guards the following fields
	conns map[string]int // inbound connections open per source IP (Limits.MaxConnsPerAddr)
}

// NewServer returns a Server for cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Hosts == nil {
		cfg.Hosts = func(string) bool { return false }
	}
	if cfg.Deliver == nil {
		cfg.Deliver = func(Stanza) {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.TLS != nil && cfg.ClientCAs != nil && cfg.TLS.ClientAuth == tls.NoClientCert {
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ClientAuth = tls.RequestClientCert // checked by externalOK, not by the handshake
	}
	return &Server{cfg: cfg, lim: cfg.Limits.withDefaults(), log: log, conns: map[string]int{}}
}

// admit checks a new connection against the allowlist and the per-address
// limit. It returns the refusal's detail ("" when admitted) and, for an
// admitted connection, the function that releases its slot.
func (s *Server) admit(addr net.Addr) (detail string, release func()) {
	if s.cfg.Allow != nil && !s.cfg.Allow(addr) {
		return "address-not-allowed", nil
	}
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if s.lim.MaxConnsPerAddr <= 0 {
		return "", func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[host] >= s.lim.MaxConnsPerAddr {
		return "conns-per-address", nil
	}
	s.conns[host]++
	return "", func() {
		s.mu.Lock()
		if s.conns[host]--; s.conns[host] <= 0 {
			delete(s.conns, host)
		}
		s.mu.Unlock()
	}
}

func (s *Server) event(e Event) {
	if s.cfg.Events != nil {
		s.cfg.Events(e)
	}
}

// Serve accepts connections on l until ctx ends, then closes l, ends every
// stream cleanly (</stream:stream>) and returns nil once they are all done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("s2s: accept: %w", err)
			}
			s.log.Warn("s2s: accept", "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Stream errors are reported (and logged) as events.
			err := s.ServeConn(ctx, c)
			switch {
			case err == nil || errors.As(err, new(*StreamError)):
			case errors.Is(err, errNoStream):
				s.log.Debug("s2s: connection closed before a stream header (health check?)", "addr", c.RemoteAddr(), "err", err)
			default:
				s.log.Info("s2s: inbound stream", "addr", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// pair is a (from-domain, to-domain) pair authenticated by dialback.
type pair struct{ from, to string }

// inStream is one inbound stream.
type inStream struct {
	srv  *Server
	addr string
	id   string
	sess *session

	mu       sync.Mutex    // guards the following fields
	verified map[pair]bool // pairs dialback accepted
	pending  map[pair]bool // pairs being verified
	tls      bool          // STARTTLS done

	// Used by the reader goroutine only.
	tokens    float64   // stanza-rate token bucket
	lastFill  time.Time // when tokens was last refilled (zero: full bucket)
	throttled bool      // the "limit" event for stanza-rate was sent
}

// ServeConn runs one inbound stream on c until it ends or ctx ends (then
// the stream is closed cleanly). It closes c.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	in := &inStream{srv: s, addr: c.RemoteAddr().String(), verified: map[pair]bool{}, pending: map[pair]bool{}}
	detail, release := s.admit(c.RemoteAddr())
	if detail != "" {
		// Refused before reading a byte: our header, the error, the close.
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		return in.fail(c, false, "", "", &StreamError{Cond: SErrPolicyViolation, Detail: detail, Text: "connection refused"})
	}
	defer release()
	return in.run(ctx, c)
}

// fail ends a stream that is not established yet with the stream error se:
// it writes our stream header first unless headerSent, reports the event
// and returns se.
func (in *inStream) fail(conn net.Conn, headerSent bool, local, remote string, se *StreamError) error {
	var b []byte
	if !headerSent {
		b = streamHeader(local, remote, newStreamID())
	}
	_, _ = conn.Write(append(b, streamErrorXML(se.Cond)...))
	in.srv.event(Event{Kind: "stream-error", Local: local, Remote: remote, Addr: in.addr, Reason: se.Cond, Detail: se.Detail})
	return se
}

// timeoutErr turns a read deadline expiry while negotiating into
// <connection-timeout/>.
func timeoutErr(err error) *StreamError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &StreamError{Cond: SErrConnectionTimeout, Detail: "connect-timeout", Text: "no stream within the connect timeout"}
	}
	return nil
}

// negotiate reads the initiator's header, answers it with features, does
// STARTTLS if asked, and returns the first element after that.
func (in *inStream) negotiate(conn net.Conn) (net.Conn, *xmlReader, element, error) {
	s := in.srv
	tlsDone, saslDone := false, false
	for {
		rd := newXMLReader(conn, s.lim)
		rd.inbound = true
		hdr, err := rd.header()
		var se *StreamError
		if errors.As(err, &se) {
			return conn, nil, element{}, in.fail(conn, false, "", "", se)
		}
		if te := timeoutErr(err); te != nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			return conn, nil, element{}, in.fail(conn, false, "", "", te)
		}
		if err != nil {
			if !tlsDone {
				err = noStream(err) // a health check: logged at debug
			}
			return conn, nil, element{}, fmt.Errorf("s2s: stream header: %w", err)
		}
		h := node{Attr: hdr.Attr}
		from, to := h.attr("from"), Domain(h.attr("to"))
		in.id = newStreamID()
		if to == "" || !s.cfg.Hosts(to) {
			return conn, nil, element{}, in.fail(conn, false, h.attr("to"), from, &StreamError{Cond: SErrHostUnknown, Text: h.attr("to")})
		}
		if from != "" && !isDomain(from) {
			return conn, nil, element{}, in.fail(conn, false, to, from, &StreamError{Cond: SErrInvalidFrom, Text: "stream from " + from})
		}
		if from != "" && s.cfg.Peers != nil && !s.cfg.Peers(Domain(from)) {
			return conn, nil, element{}, in.fail(conn, false, to, from, &StreamError{Cond: SErrInvalidFrom, Detail: "peer-domain", Text: "stream from " + from + ", not a peer domain"})
		}
		out := streamHeader(to, from, in.id)
		offerTLS := s.cfg.TLS != nil && !tlsDone
		offerSASL := false
		if h.attr("version") != "" {
			offerSASL = tlsDone && !saslDone && s.externalOK(conn, Domain(from))
			out = append(out, featuresXML(offerTLS, offerTLS && s.cfg.RequireTLS, offerSASL)...)
		}
		if _, err := conn.Write(out); err != nil {
			return conn, nil, element{}, fmt.Errorf("s2s: write header: %w", err)
		}
		ev := Event{Kind: "in-open", Local: to, Remote: from, Addr: in.addr}
		if tlsDone {
			ev.Reason = "tls"
		}
		s.event(ev)
		next := func() (element, error) {
			el, err := rd.next()
			if errors.As(err, &se) {
				return element{}, in.fail(conn, true, to, from, se)
			}
			if te := timeoutErr(err); te != nil {
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				return element{}, in.fail(conn, true, to, from, te)
			}
			if errors.Is(err, errStreamEnd) {
				_, _ = conn.Write([]byte(streamClose))
				return element{}, err
			}
			if err != nil {
				return element{}, fmt.Errorf("s2s: read: %w", err)
			}
			return el, nil
		}
		el, err := next()
		if err != nil {
			return conn, nil, element{}, err
		}
		if el.Node != nil && el.Node.Name.Space == NSSASL && !saslDone {
			ok, err := in.acceptExternal(conn, el.Node, offerSASL, Domain(from), to)
			if err != nil {
				return conn, nil, element{}, err
			}
			if ok {
				saslDone = true
				continue // stream restart (RFC 6120 §6.4.6)
			}
			if el, err = next(); err != nil { // refused: dialback may follow
				return conn, nil, element{}, err
			}
		}
		if el.Node == nil || el.Node.Name.Space != NSTLS || el.Node.Name.Local != "starttls" {
			in.mu.Lock()
			in.tls = tlsDone
			in.mu.Unlock()
			return conn, rd, el, nil
		}
		if !offerTLS {
			_, _ = conn.Write([]byte("<failure xmlns='" + NSTLS + "'/></stream:stream>"))
			s.event(Event{Kind: "in-refused", Local: to, Remote: from, Addr: in.addr, Reason: "starttls-not-offered"})
			return conn, nil, element{}, errors.New("s2s: starttls not offered")
		}
		if _, err := conn.Write([]byte("<proceed xmlns='" + NSTLS + "'/>")); err != nil {
			return conn, nil, element{}, fmt.Errorf("s2s: write: %w", err)
		}
		tc := tls.Server(conn, s.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			s.event(Event{Kind: "in-refused", Local: to, Remote: from, Addr: in.addr, Reason: "tls-handshake"})
			return conn, nil, element{}, fmt.Errorf("s2s: TLS handshake: %w", err)
		}
		conn, tlsDone = tc, true
	}
}

// isDomain reports whether d is a valid JID domainpart (no localpart or
// resource).
func isDomain(d string) bool {
	j, err := jid.Parse(d)
	return err == nil && j.Localpart() == "" && j.Resourcepart() == ""
}

func (in *inStream) run(ctx context.Context, c net.Conn) error {
	s := in.srv
	_ = c.SetDeadline(time.Now().Add(s.lim.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { c.Close() })
	conn, rd, el, err := in.negotiate(c)
	if !stop() {
		return nil
	}
	if err != nil {
		if errors.Is(err, errStreamEnd) {
			return nil
		}
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	defer closeRaw(conn)
	in.sess = newSession(conn, rd, s.lim, s.log.With("addr", in.addr, "id", in.id))
	in.sess.handle = in.handle
	in.sess.onError = func(se *StreamError) {
		s.event(Event{Kind: "stream-error", Addr: in.addr, Reason: se.Cond, Detail: se.Detail})
	}
	var first []element
	if el.Node != nil || el.Stanza != nil {
		first = append(first, el)
	}
	err = in.sess.run(ctx, first)
	in.mu.Lock()
	pairs := len(in.verified)
	in.mu.Unlock()
	s.event(Event{Kind: "in-close", Addr: in.addr, Bytes: pairs})
	return err
}
