package compare

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
)

// user is one logged-in real client (prosodytest's mellium client, which
// talks to ejabberd as well as to Prosody) and what it has received.
type user struct {
	name, domain string
	side         int // 0: a.test (Prosody), 1: b.test (ejabberd)
	c            *prosodytest.Client
	loginStart   time.Time

	mu        sync.Mutex // guards presences and cond's waiters
	cond      *sync.Cond
	presences []prosodytest.Presence
	closed    bool
}

func (u *user) bare() string { return u.name + "@" + u.domain }

// login connects and authenticates; it sends no presence.
func login(ctx context.Context, t testing.TB, name, domain, c2s string, side int, rec *recorder) (*user, error) {
	u := &user{name: name, domain: domain, side: side, loginStart: time.Now()}
	u.cond = sync.NewCond(&u.mu)
	c, err := prosodytest.Dial(ctx, t, &prosodytest.Server{Domain: domain, C2SAddr: c2s}, name, "pw-"+name)
	if err != nil {
		return nil, err
	}
	u.c = c
	go u.read(ctx, rec)
	return u, nil
}

// read hands messages to the recorder and keeps presences for waiters.
func (u *user) read(ctx context.Context, rec *recorder) {
	defer func() {
		u.mu.Lock()
		u.closed = true
		u.cond.Broadcast()
		u.mu.Unlock()
	}()
	for {
		select {
		case m := <-u.c.Messages():
			rec.received(u, m)
		case p := <-u.c.Presences():
			u.mu.Lock()
			u.presences = append(u.presences, p)
			u.cond.Broadcast()
			u.mu.Unlock()
		case <-u.c.Done():
			return
		case <-ctx.Done():
			return
		}
	}
}

// waitPresence waits until a presence received since index from matches,
// and returns it.
func (u *user) waitPresence(ctx context.Context, from int, limit time.Duration, match func(prosodytest.Presence) bool) (prosodytest.Presence, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		u.mu.Lock()
		u.cond.Broadcast()
		u.mu.Unlock()
	})
	defer stop()
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := from; ; {
		for ; i < len(u.presences); i++ {
			if match(u.presences[i]) {
				return u.presences[i], nil
			}
		}
		if ctx.Err() != nil || u.closed {
			return prosodytest.Presence{}, fmt.Errorf("%s: no matching presence after %v (%d received)", u.bare(), limit, len(u.presences))
		}
		u.cond.Wait()
	}
}

func (u *user) mark() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.presences)
}

func from(bare string) func(prosodytest.Presence) bool {
	return func(p prosodytest.Presence) bool {
		return p.From == bare || strings.HasPrefix(p.From, bare+"/")
	}
}

func available(bare string) func(prosodytest.Presence) bool {
	f := from(bare)
	return func(p prosodytest.Presence) bool { return p.Type == "" && f(p) }
}

func typed(typ, bare string) func(prosodytest.Presence) bool {
	f := from(bare)
	return func(p prosodytest.Presence) bool { return p.Type == typ && f(p) }
}

func (u *user) send(ctx context.Context, r xml.TokenReader) error {
	if err := u.c.Session().Send(ctx, r); err != nil {
		return fmt.Errorf("%s: send: %w", u.bare(), err)
	}
	return nil
}

func el(space, local string, attrs ...string) xml.StartElement {
	s := xml.StartElement{Name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		s.Attr = append(s.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	return s
}

func text(local, s string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(s)), xml.StartElement{Name: xml.Name{Local: local}})
}

// message sends a message of type typ with body to to.
func (u *user) message(ctx context.Context, to, typ, id, body string) error {
	j, err := jid.Parse(to)
	if err != nil {
		return err
	}
	return u.send(ctx, stanza.Message{To: j, ID: id, Type: stanza.MessageType(typ)}.Wrap(text("body", body)))
}

// presenceTo sends directed presence (type typ, optional payload).
func (u *user) presenceTo(ctx context.Context, to string, typ stanza.PresenceType, payload xml.TokenReader) error {
	j, err := jid.Parse(to)
	if err != nil {
		return err
	}
	return u.send(ctx, stanza.Presence{To: j, Type: typ}.Wrap(payload))
}

// iq sends an iq of type typ with payload to to, waits for the answer and
// returns the round-trip time; an error answer is an error.
func (u *user) iq(ctx context.Context, limit time.Duration, to string, typ stanza.IQType, payload xml.TokenReader) (time.Duration, error) {
	j, err := jid.Parse(to)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t0 := time.Now()
	resp, err := u.c.Session().SendIQElement(ctx, payload, stanza.IQ{To: j, Type: typ})
	if err != nil {
		return 0, fmt.Errorf("%s: iq to %s: %w", u.bare(), to, err)
	}
	defer resp.Close()
	rtt := time.Since(t0)
	tok, err := resp.Token()
	if err != nil {
		return 0, fmt.Errorf("%s: iq to %s: reading the answer: %w", u.bare(), to, err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return 0, fmt.Errorf("%s: iq to %s: answer starts with %T", u.bare(), to, tok)
	}
	for _, a := range start.Attr {
		if a.Name.Local == "type" && a.Value != "result" {
			return rtt, fmt.Errorf("%s: iq to %s: answer of type %q", u.bare(), to, a.Value)
		}
	}
	return rtt, nil
}

func (u *user) close() {
	_ = u.c.Close()
}
