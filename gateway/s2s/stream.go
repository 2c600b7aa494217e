package s2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Limits bound what one stream, and one source address, may cost. Zero
// fields take the defaults; the ones marked "off" are off unless set.
type Limits struct {
	// Over these, a stanza is refused alone (bounced with <policy-violation/>,
	// the stream goes on); another element ends the stream with <policy-violation/>.
	MaxStanzaSize  int           // bytes of one element (default 262144)
	MaxDepth       int           // XML nesting inside a stanza (default 64)
	MaxAttrs       int           // attributes (namespace declarations included) per element (default 64)
	MaxTextSize    int           // input bytes of one text run, attribute value or name (default MaxStanzaSize)
	ConnectTimeout time.Duration // dial + stream + dialback deadline, and per-write deadline (default 30s); inbound: header and first element, else <connection-timeout/>
	Keepalive      time.Duration // send a single space when the stream was write-idle this long (default 60s)
	IdleTimeout    time.Duration // close a stream with no stanza either way this long (default 10m)
	QueueLimit     int           // stanzas queued per outgoing stream (default 1000)
	// MaxConnsPerAddr bounds the inbound connections open at once from
	// one source IP address (off when <= 0); the excess gets
	// <policy-violation/> at once.
	MaxConnsPerAddr int
	// StanzaRate is the stanzas per second one inbound stream may send on
	// average, with bursts of StanzaBurst (default max(1, StanzaRate));
	// off when <= 0. A faster sender is throttled, not refused: its
	// stream is read no faster than the rate allows (TCP pushes back), as
	// Prosody's mod_limits and ejabberd's shapers do.
	StanzaRate  float64
	StanzaBurst int
}

func (l Limits) withDefaults() Limits {
	if l.MaxStanzaSize <= 0 {
		l.MaxStanzaSize = 262144
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = 64
	}
	if l.MaxTextSize <= 0 || l.MaxTextSize > l.MaxStanzaSize {
		l.MaxTextSize = l.MaxStanzaSize
	}
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = 30 * time.Second
	}
	if l.Keepalive <= 0 {
		l.Keepalive = 60 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 10 * time.Minute
	}
	if l.QueueLimit <= 0 {
		l.QueueLimit = 1000
	}
	if l.StanzaRate > 0 && l.StanzaBurst <= 0 {
		l.StanzaBurst = max(1, int(l.StanzaRate))
	}
	return l
}

// closeWait is how long a stream waits for the peer's </stream:stream>
// after sending its own.
func (l Limits) closeWait() time.Duration {
	return min(5*time.Second, l.ConnectTimeout)
}

// Event reports something that happened on a stream, for metrics and logs.
//
// Kind says what happened (EventKinds lists them). An "in-refused" event with
// a stanza error condition as its Reason is one stanza refused (a strict-XML
// fault or an over-limit stanza): it was bounced and the stream reads on.
type Event struct {
	Kind   EventKind
	Local  string // our domain
	Remote string // the peer's domain
	Addr   string // the peer's address
	Reason string // error condition or text
	// Detail names the limit or trust rule behind a refusal or a
	// throttle, as a short token: "stanza-size", "depth", "attributes",
	// "text-size", "name-size", "restricted-xml", "stanza-rate", "conns-per-address",
	// "address-not-allowed", "peer-domain", "connect-timeout",
	// "tls-required"; for XML that is not namespace-well-formed
	// "duplicate-attribute", "unbound-prefix", "namespace-declaration",
	// "namespace-prefix", "namespace-name", "name", "char",
	// "attribute-syntax". Empty for other events.
	Detail string
	Bytes  int // bytes concerned, when that means something
}

// EventKind names what an Event reports.
type EventKind string

// The event kinds; EventKinds lists them all.
const (
	EventInOpen       EventKind = "in-open"       // an inbound stream opened (Reason "tls" once STARTTLS is done)
	EventInAuth       EventKind = "in-auth"       // a domain pair verified by dialback on an inbound stream
	EventInRefused    EventKind = "in-refused"    // a domain pair or stanza refused on an inbound stream
	EventInClose      EventKind = "in-close"      // an inbound stream closed (Bytes: the pairs it had verified)
	EventVerifyAnswer EventKind = "verify-answer" // a db:verify answered
	EventOutOpen      EventKind = "out-open"      // an outgoing stream connected, dialback running
	EventOutAuth      EventKind = "out-auth"      // an outgoing stream established (Reason "tls" over TLS)
	EventOutFail      EventKind = "out-fail"      // an outgoing stream could not be established
	EventOutClose     EventKind = "out-close"     // an outgoing stream ended (also after out-fail)
	EventBounce       EventKind = "bounce"        // the Pool bounced a stanza (Reason: the condition)
	EventStreamError  EventKind = "stream-error"  // a stream ended with a stream error (Reason: the condition)
	EventLimit        EventKind = "limit"         // a limit acted (Detail "stanza-rate": an inbound stream is throttled; once per stream)
)

// EventKinds lists every EventKind, for metrics that show each from the start.
var EventKinds = []EventKind{EventInOpen, EventInAuth, EventInRefused, EventInClose, EventVerifyAnswer,
	EventOutOpen, EventOutAuth, EventOutFail, EventOutClose, EventBounce, EventStreamError, EventLimit}

// Dialer opens a connection; nil means a net.Dialer.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (d Dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	if d != nil {
		return d(ctx, "tcp", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

// closeKind says why the writer ends the stream.
type closeKind int

const (
	closePeerEnded closeKind = iota // the peer sent </stream:stream>: answer it
	closeStreamErr                  // we send a stream error
	closeGraceful                   // we close first and wait for the peer's close
	closeImmediate                  // the stream is broken: just close the socket
)

type closeReq struct {
	kind closeKind
	cond string
}

// session is an established stream (after header exchange, TLS and, for
// the initiator, dialback). It runs one reader and one writer goroutine;
// the writer owns all writes and the closing of the connection.
type session struct {
	conn   net.Conn
	rd     *xmlReader
	lim    Limits
	log    *slog.Logger
	ctl    chan []byte   // control elements to write before queued stanzas
	closeC chan closeReq // first close request wins (capacity 1)
	peerC  chan struct{} // closed by the reader at the peer's </stream:stream>

	weClosed   atomic.Bool  // we sent </stream:stream>
	sockClosed atomic.Bool  // the writer closed the socket
	lastActive atomic.Int64 // unix nanoseconds of the last stanza read or written

	// Outgoing streams only.
	notify    <-chan struct{}        // a stanza was queued
	pull      func() (Stanza, bool)  // next queued stanza
	writeFail func(Stanza, error)    // a pulled stanza could not be written
	idleClose func() bool            // may the stream close for idleness now? (claims it)
	handle    func(el element) error // called by the reader for each element
	onError   func(se *StreamError)  // a stream error we are about to send; may be nil

	g     *errgroup.Group // the session's goroutines; set by run
	abort context.Context // ends when the stream does; set by run
}

func newSession(conn net.Conn, rd *xmlReader, lim Limits, log *slog.Logger) *session {
	s := &session{
		conn:   conn,
		rd:     rd,
		lim:    lim,
		log:    log,
		ctl:    make(chan []byte, 32),
		closeC: make(chan closeReq, 1),
		peerC:  make(chan struct{}),
	}
	s.touch()
	return s
}

func (s *session) touch() { s.lastActive.Store(time.Now().UnixNano()) }

// requestClose asks the writer to end the stream; only the first request counts.
func (s *session) requestClose(r closeReq) {
	select {
	case s.closeC <- r:
	default:
	}
}

// send queues a control element; it blocks while the queue is full, until
// ctx ends.
func (s *session) send(ctx context.Context, b []byte) error {
	select {
	case s.ctl <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run drives the session until the stream is closed: first is handled
// before anything else is read. ctx ending closes the stream gracefully.
func (s *session) run(ctx context.Context, first []element) error {
	g, gctx := errgroup.WithContext(context.Background())
	abort, cancel := context.WithCancel(gctx)
	defer cancel()
	s.g, s.abort = g, abort
	g.Go(func() error {
		defer cancel()
		return s.writeLoop(ctx, abort)
	})
	g.Go(func() error {
		err := s.readLoop(first)
		if err != nil && s.sockClosed.Load() {
			return nil
		}
		return err
	})
	err := g.Wait()
	closeRaw(s.conn)
	return err
}

// spawn runs f in the session's group; f's context ends with the stream.
// Only the reader goroutine (handle) calls it.
func (s *session) spawn(f func(ctx context.Context)) {
	s.g.Go(func() error {
		f(s.abort)
		return nil
	})
}

func (s *session) readLoop(first []element) error {
	for {
		var (
			el  element
			err error
		)
		if len(first) > 0 {
			el, first = first[0], first[1:]
		} else {
			el, err = s.rd.next()
		}
		if err == nil {
			if el.Stanza != nil {
				s.touch()
			}
			err = s.handle(el)
		}
		if err == nil {
			continue
		}
		var se *StreamError
		switch {
		case errors.Is(err, errStreamEnd):
			if s.weClosed.Load() {
				close(s.peerC)
			} else {
				s.requestClose(closeReq{kind: closePeerEnded})
			}
			return nil
		case errors.As(err, &se):
			if s.onError != nil {
				s.onError(se) // reported (and logged) once, as an event
			} else {
				s.log.Info("s2s: stream error", "cond", se.Cond, "detail", se.Detail, "err", se.Text)
			}
			s.requestClose(closeReq{kind: closeStreamErr, cond: se.Cond})
			return nil
		default:
			s.requestClose(closeReq{kind: closeImmediate})
			if s.sockClosed.Load() || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("s2s: read: %w", err)
		}
	}
}

func (s *session) write(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.lim.ConnectTimeout))
	_, err := s.conn.Write(b)
	if err != nil {
		return fmt.Errorf("s2s: write: %w", err)
	}
	return nil
}

func (s *session) closeSocket() {
	s.sockClosed.Store(true)
	closeRaw(s.conn)
}

// closeRaw closes c's transport. For TLS it skips close_notify, whose write
// can block for seconds on a peer that stopped reading: </stream:stream>
// already ended the stream.
func closeRaw(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		tc.NetConn().Close()
		return
	}
	c.Close()
}

// writeLoop writes control elements and queued stanzas, keepalives, and
// ends the stream. It returns when the socket is closed.
func (s *session) writeLoop(ctx, abort context.Context) error {
	keep := time.NewTimer(s.lim.Keepalive)
	defer keep.Stop()
	idle := time.NewTimer(s.lim.IdleTimeout)
	defer idle.Stop()
	wrote := func() { keep.Reset(s.lim.Keepalive) }
	for {
		// Control elements go first.
		select {
		case b := <-s.ctl:
			if err := s.write(b); err != nil {
				s.closeSocket()
				return err
			}
			wrote()
			continue
		default:
		}
		select {
		case b := <-s.ctl:
			if err := s.write(b); err != nil {
				s.closeSocket()
				return err
			}
			wrote()
		case <-s.notify:
			if err := s.drain(); err != nil {
				s.closeSocket()
				return err
			}
			wrote()
		case <-keep.C:
			if err := s.write([]byte(" ")); err != nil {
				s.closeSocket()
				return err
			}
			keep.Reset(s.lim.Keepalive)
		case <-idle.C:
			last := time.Unix(0, s.lastActive.Load())
			if rest := s.lim.IdleTimeout - time.Since(last); rest > 0 {
				idle.Reset(rest)
				continue
			}
			if s.idleClose != nil && !s.idleClose() {
				idle.Reset(s.lim.IdleTimeout)
				continue
			}
			s.log.Debug("s2s: closing idle stream")
			return s.graceful(abort)
		case r := <-s.closeC:
			switch r.kind {
			case closePeerEnded:
				_ = s.write([]byte(streamClose))
			case closeStreamErr:
				_ = s.write(streamErrorXML(r.cond))
			}
			s.closeSocket()
			return nil
		case <-ctx.Done():
			if s.pull != nil {
				if err := s.drain(); err != nil {
					s.closeSocket()
					return err
				}
			}
			return s.graceful(abort)
		case <-abort.Done():
			s.closeSocket()
			return nil
		}
	}
}

// drain writes every queued stanza.
func (s *session) drain() error {
	if s.pull == nil {
		return nil
	}
	for {
		st, ok := s.pull()
		if !ok {
			return nil
		}
		if err := s.write(st.Raw); err != nil {
			s.writeFail(st, err)
			return err
		}
		s.touch()
	}
}

// graceful sends </stream:stream>, waits for the peer's, and closes.
func (s *session) graceful(abort context.Context) error {
	s.weClosed.Store(true)
	err := s.write([]byte(streamClose))
	if err == nil {
		t := time.NewTimer(s.lim.closeWait())
		select {
		case <-s.peerC:
		case <-t.C:
		case <-abort.Done():
		case <-s.closeC:
		}
		t.Stop()
	}
	s.closeSocket()
	return nil
}

// answerVerify answers a db:verify request for a stream id we know nothing
// about except that our side gave out the key: XEP-0185 keys are stateless.
func answerVerify(n *node, secret string, hosts func(string) bool) []byte {
	from, to, id := n.attr("from"), n.attr("to"), n.attr("id")
	typ := "invalid"
	if hosts(to) && checkKey(secret, from, to, id, n.Text) {
		typ = "valid"
	}
	return dbVerify(to, from, id, "", typ)
}

// initOpts says how an initiated stream is secured and authenticated.
type initOpts struct {
	// TLS is the STARTTLS client configuration; nil: no STARTTLS. Its
	// Certificates are not all presented: only the one valid for the
	// stream's from-domain, if any, as the client certificate.
	TLS *tls.Config
	// RequireTLS fails the stream unless STARTTLS was done.
	RequireTLS bool
	// SASL authenticates with SASL EXTERNAL (XEP-0178) when the peer
	// offers it after STARTTLS and TLS holds a certificate for the
	// from-domain; otherwise (or when the peer refuses it) the caller
	// goes on with dialback.
	SASL bool
}

// initiate opens a stream on conn as the initiating server (from -> to):
// writes the header, reads the answer and the features, does STARTTLS if
// opt.TLS is set and the peer offers it, and SASL EXTERNAL if opt.SASL
// allows it. It returns the connection to use (TLS-wrapped or not), its
// reader, the stream id the peer chose and whether SASL authenticated the
// stream (then no dialback is needed).
func initiate(conn net.Conn, from, to string, opt initOpts, lim Limits) (_ net.Conn, _ *xmlReader, id string, authed bool, _ error) {
	var cert *tls.Certificate
	if opt.TLS != nil {
		cert = certFor(opt.TLS.Certificates, from)
	}
	tlsDone := false
	for {
		if _, err := conn.Write(streamHeader(from, to, "")); err != nil {
			return conn, nil, "", false, fmt.Errorf("s2s: write header to %s: %w", to, err)
		}
		rd := newXMLReader(conn, lim)
		hdr, err := rd.header()
		if err != nil {
			return conn, nil, "", false, fmt.Errorf("s2s: stream header from %s: %w", to, err)
		}
		n := node{Attr: hdr.Attr}
		id := n.attr("id")
		if id == "" {
			return conn, nil, "", false, fmt.Errorf("s2s: stream header from %s: no id", to)
		}
		if n.attr("version") == "" {
			// Pre-RFC 6120 server: no features; dialback straight away.
			if opt.RequireTLS && !tlsDone {
				return conn, nil, "", false, fmt.Errorf("s2s: %s offers no STARTTLS (pre-1.0 stream) and TLS is required (s2s.require_tls)", to)
			}
			return conn, rd, id, false, nil
		}
		el, err := rd.next()
		if err != nil {
			return conn, nil, "", false, fmt.Errorf("s2s: features from %s: %w", to, err)
		}
		if el.Node == nil || el.Node.Name.Space != NSStream || el.Node.Name.Local != "features" {
			if el.Node != nil && el.Node.Name.Local == "error" && el.Node.Name.Space == NSStream {
				return conn, nil, "", false, fmt.Errorf("s2s: %s: %w", to, peerStreamError(el.Node))
			}
			return conn, nil, "", false, fmt.Errorf("s2s: %s: expected stream features", to)
		}
		feats := el.Node
		if authed {
			return conn, rd, id, true, nil
		}
		starttls := feats.child(NSTLS, "starttls")
		if !tlsDone {
			switch {
			case starttls != nil && opt.TLS != nil:
				tc, err := startTLS(conn, rd, to, opt.TLS, cert)
				if err != nil {
					return conn, nil, "", false, err
				}
				conn, tlsDone = tc, true
				continue
			case opt.RequireTLS:
				if opt.TLS == nil {
					return conn, nil, "", false, fmt.Errorf("s2s: TLS to %s is required but no TLS client configuration is set", to)
				}
				return conn, nil, "", false, fmt.Errorf("s2s: %s does not offer STARTTLS and TLS is required (s2s.require_tls)", to)
			case starttls != nil && starttls.child(NSTLS, "required") != nil:
				return conn, nil, "", false, fmt.Errorf("s2s: %s requires STARTTLS: give the gateway a certificate (s2s.cert_file) or a CA file (s2s.ca_file)", to)
			}
		}
		if opt.SASL && tlsDone && cert != nil && offersExternal(feats) {
			ok, err := saslExternal(conn, rd, from, to)
			if err != nil {
				return conn, nil, "", false, err
			}
			if ok {
				authed = true
				continue // stream restart (RFC 6120 §6.4.6)
			}
		}
		return conn, rd, id, false, nil
	}
}

// startTLS asks for STARTTLS on the stream read by rd and does the client
// handshake, presenting cert (may be nil) as the client certificate.
func startTLS(conn net.Conn, rd *xmlReader, to string, cfg *tls.Config, cert *tls.Certificate) (*tls.Conn, error) {
	if _, err := conn.Write([]byte("<starttls xmlns='" + NSTLS + "'/>")); err != nil {
		return nil, fmt.Errorf("s2s: starttls to %s: %w", to, err)
	}
	el, err := rd.next()
	if err != nil {
		return nil, fmt.Errorf("s2s: starttls to %s: %w", to, err)
	}
	if el.Node == nil || el.Node.Name.Space != NSTLS || el.Node.Name.Local != "proceed" {
		return nil, fmt.Errorf("s2s: starttls to %s refused", to)
	}
	c := cfg.Clone()
	if c.ServerName == "" {
		c.ServerName = to
	}
	c.Certificates = nil
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert == nil {
			return &tls.Certificate{}, nil // none
		}
		return cert, nil
	}
	tc := tls.Client(conn, c)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("s2s: TLS handshake with %s: %w", to, err)
	}
	return tc, nil
}

// peerStreamError turns a received <stream:error> into a *StreamError.
func peerStreamError(n *node) error {
	cond := SErrUndefinedCondition
	for _, c := range n.Children {
		if c.Name.Space == NSStreams && c.Name.Local != "text" {
			cond = c.Name.Local
		}
	}
	return &StreamError{Cond: cond, Text: "sent by peer"}
}
