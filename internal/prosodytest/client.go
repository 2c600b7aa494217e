package prosodytest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
)

// queueLen bounds each client's inbound message and presence queues. A full
// queue drops the newest stanza and counts it (see [Client.Dropped]).
const queueLen = 4096

// Message is a received <message/>.
type Message struct {
	From, To, ID, Type string
	Body               string
	Inner              string    // inner XML, for payloads other than body
	Received           time.Time // when the client read it
}

// Presence is a received <presence/>. From is empty for presence from the
// client's own bare JID (mellium normalizes it away).
type Presence struct {
	From, To, ID, Type string
	Show, Status       string
	Priority           int
	Inner              string
	Received           time.Time
}

// Client is a real XMPP client (mellium.im/xmpp) logged in to a test server.
// One goroutine, started by Dial and waited for by Close, reads the stream.
type Client struct {
	t       testing.TB
	session *xmpp.Session
	conn    net.Conn

	messages  chan Message
	presences chan Presence
	dropped   atomic.Uint64

	serveDone chan struct{} // closed when Serve has returned
	serveErr  error         // set before serveDone is closed

	closeOnce sync.Once
	closeErr  error
}

// Dial connects user@s.Domain to s over plain TCP, authenticates (SCRAM, then
// PLAIN), binds a resource and starts reading. It sends no presence. The
// client is closed in t.Cleanup if the test does not close it first.
func Dial(ctx context.Context, t testing.TB, s *Server, user, pass string) (*Client, error) {
	t.Helper()
	return DialAddr(ctx, t, s.Domain, s.C2SAddr, user, pass)
}

// DialAddr is [Dial] for any server (ejabberd too): user@domain at the
// client address c2sAddr.
func DialAddr(ctx context.Context, t testing.TB, domain, c2sAddr, user, pass string) (*Client, error) {
	t.Helper()
	origin, err := jid.Parse(user + "@" + domain)
	if err != nil {
		return nil, fmt.Errorf("prosodytest: dial %s@%s: %w", user, domain, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c2sAddr)
	if err != nil {
		return nil, fmt.Errorf("prosodytest: dial %s: %w", origin, err)
	}
	features := []xmpp.StreamFeature{
		xmpp.SASL("", pass, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain),
		xmpp.BindResource(),
	}
	// Secure is set by hand: mellium refuses SASL on a stream it does not
	// consider secure, and these servers are on loopback without TLS.
	session, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("prosodytest: log in %s: %w", origin, err)
	}
	c := &Client{
		t:         t,
		session:   session,
		conn:      conn,
		messages:  make(chan Message, queueLen),
		presences: make(chan Presence, queueLen),
		serveDone: make(chan struct{}),
	}
	go func() {
		c.serveErr = session.Serve(xmpp.HandlerFunc(c.handle))
		close(c.serveDone)
	}()
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// JID is the client's full JID as bound by the server.
func (c *Client) JID() string { return c.session.LocalAddr().String() }

// Session exposes the mellium session for anything this driver lacks.
func (c *Client) Session() *xmpp.Session { return c.session }

// Messages delivers received messages in arrival order.
func (c *Client) Messages() <-chan Message { return c.messages }

// Presences delivers received presence stanzas in arrival order.
func (c *Client) Presences() <-chan Presence { return c.presences }

// Dropped counts stanzas dropped because a queue was full.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// Done is closed when the stream has ended (closed by either side).
func (c *Client) Done() <-chan struct{} { return c.serveDone }

type messageXML struct {
	From  string `xml:"from,attr"`
	To    string `xml:"to,attr"`
	ID    string `xml:"id,attr"`
	Type  string `xml:"type,attr"`
	Body  string `xml:"body"`
	Inner string `xml:",innerxml"`
}

type presenceXML struct {
	From     string `xml:"from,attr"`
	To       string `xml:"to,attr"`
	ID       string `xml:"id,attr"`
	Type     string `xml:"type,attr"`
	Show     string `xml:"show"`
	Status   string `xml:"status"`
	Priority int    `xml:"priority"`
	Inner    string `xml:",innerxml"`
}

type iqXML struct {
	From  string `xml:"from,attr"`
	ID    string `xml:"id,attr"`
	Type  string `xml:"type,attr"`
	Query struct {
		XMLName xml.Name
	} `xml:",any"`
}

// handle runs on the Serve goroutine for each top-level element.
func (c *Client) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	now := time.Now()
	// t yields the children and the end element, not the start: put it back
	// so the decoder sees a balanced element.
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start.Copy()), t))
	switch start.Name.Local {
	case "message":
		var m messageXML
		if err := d.Decode(&m); err != nil {
			return fmt.Errorf("prosodytest: decode message: %w", err)
		}
		msg := Message{From: m.From, To: m.To, ID: m.ID, Type: m.Type, Body: m.Body, Inner: m.Inner, Received: now}
		select {
		case c.messages <- msg:
		default:
			c.dropped.Add(1)
		}
	case "presence":
		var p presenceXML
		if err := d.Decode(&p); err != nil {
			return fmt.Errorf("prosodytest: decode presence: %w", err)
		}
		pr := Presence{From: p.From, To: p.To, ID: p.ID, Type: p.Type, Show: p.Show, Status: p.Status,
			Priority: p.Priority, Inner: p.Inner, Received: now}
		select {
		case c.presences <- pr:
		default:
			c.dropped.Add(1)
		}
	case "iq":
		var iq iqXML
		if err := d.Decode(&iq); err != nil {
			return fmt.Errorf("prosodytest: decode iq: %w", err)
		}
		ns := iq.Query.XMLName.Space
		pushOrPing := (iq.Type == "set" && ns == roster.NS) || (iq.Type == "get" && ns == "urn:xmpp:ping")
		if !pushOrPing {
			return nil // the session answers other get/set with service-unavailable
		}
		var to jid.JID
		if iq.From != "" {
			var err error
			if to, err = jid.Parse(iq.From); err != nil {
				return fmt.Errorf("prosodytest: iq from %q: %w", iq.From, err)
			}
		}
		_, err := xmlstream.Copy(t, stanza.IQ{ID: iq.ID, Type: stanza.ResultIQ, To: to}.Wrap(nil))
		return err
	}
	return nil
}

func (c *Client) sendPresence(ctx context.Context, to string, typ stanza.PresenceType, payload xml.TokenReader) error {
	p := stanza.Presence{Type: typ}
	if to != "" {
		j, err := jid.Parse(to)
		if err != nil {
			return fmt.Errorf("prosodytest: presence to %q: %w", to, err)
		}
		p.To = j
	}
	if err := c.session.Send(ctx, p.Wrap(payload)); err != nil {
		return fmt.Errorf("prosodytest: %s: send presence %s to %q: %w", c.JID(), typ, to, err)
	}
	return nil
}

func textElement(name, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Local: name}})
}

// SendPresence broadcasts available presence with optional show and status.
func (c *Client) SendPresence(ctx context.Context, show, status string) error {
	var parts []xml.TokenReader
	if show != "" {
		parts = append(parts, textElement("show", show))
	}
	if status != "" {
		parts = append(parts, textElement("status", status))
	}
	return c.sendPresence(ctx, "", stanza.AvailablePresence, xmlstream.MultiReader(parts...))
}

// SendUnavailable broadcasts unavailable presence.
func (c *Client) SendUnavailable(ctx context.Context) error {
	return c.sendPresence(ctx, "", stanza.UnavailablePresence, nil)
}

// Subscribe asks bare JID to for a presence subscription.
func (c *Client) Subscribe(ctx context.Context, to string) error {
	return c.sendPresence(ctx, to, stanza.SubscribePresence, nil)
}

// Approve grants bare JID to a subscription to this user's presence.
func (c *Client) Approve(ctx context.Context, to string) error {
	return c.sendPresence(ctx, to, stanza.SubscribedPresence, nil)
}

// SendMessage sends a chat message with the given id and body.
func (c *Client) SendMessage(ctx context.Context, to, id, body string) error {
	j, err := jid.Parse(to)
	if err != nil {
		return fmt.Errorf("prosodytest: message to %q: %w", to, err)
	}
	m := stanza.Message{To: j, ID: id, Type: stanza.ChatMessage}
	if err := c.session.Send(ctx, m.Wrap(textElement("body", body))); err != nil {
		return fmt.Errorf("prosodytest: %s: send message %s to %s: %w", c.JID(), id, to, err)
	}
	return nil
}

// Roster fetches the user's roster from the server.
func (c *Client) Roster(ctx context.Context) ([]RosterItem, error) {
	iter := roster.Fetch(ctx, c.session)
	defer iter.Close()
	var items []RosterItem
	for iter.Next() {
		it := iter.Item()
		items = append(items, RosterItem{JID: it.JID.String(), Subscription: it.Subscription, Name: it.Name, Groups: it.Group})
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("prosodytest: %s: roster: %w", c.JID(), err)
	}
	return items, nil
}

// WaitPresence reads presences until match accepts one, discarding the rest,
// and returns it.
func (c *Client) WaitPresence(ctx context.Context, match func(Presence) bool) (Presence, error) {
	for {
		select {
		case p := <-c.presences:
			if match(p) {
				return p, nil
			}
		case <-c.serveDone:
			return Presence{}, fmt.Errorf("prosodytest: %s: stream ended: %v", c.JID(), c.serveErr)
		case <-ctx.Done():
			return Presence{}, fmt.Errorf("prosodytest: %s: waiting for presence: %w", c.JID(), ctx.Err())
		}
	}
}

// NextMessage returns the next received message.
func (c *Client) NextMessage(ctx context.Context) (Message, error) {
	select {
	case m := <-c.messages:
		return m, nil
	case <-c.serveDone:
		return Message{}, fmt.Errorf("prosodytest: %s: stream ended: %v", c.JID(), c.serveErr)
	case <-ctx.Done():
		return Message{}, fmt.Errorf("prosodytest: %s: waiting for message: %w", c.JID(), ctx.Err())
	}
}

// Close ends the stream, closes the connection and waits for the reader.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		err := c.session.Close()
		select {
		case <-c.serveDone:
		case <-time.After(2 * time.Second):
			// The server did not close its side in time; cut the connection.
		}
		if cerr := c.conn.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		<-c.serveDone
		if err != nil {
			c.closeErr = fmt.Errorf("prosodytest: close: %w", err)
		}
	})
	return c.closeErr
}

// SendRaw sends one stanza given as XML text (in the client's default
// namespace: write it without xmlns), for what this driver has no helper
// for: MUC joins and groupchat messages, directed presence.
func (c *Client) SendRaw(ctx context.Context, stanzaXML string) error {
	if err := c.session.Send(ctx, xml.NewDecoder(strings.NewReader(stanzaXML))); err != nil {
		return fmt.Errorf("prosodytest: %s: send %s: %w", c.JID(), stanzaXML, err)
	}
	return nil
}

// IQ sends an iq given as XML text (it must carry an id) and returns the
// response as XML text; an error response is returned as text, not as an
// error.
func (c *Client) IQ(ctx context.Context, iqXML string) (string, error) {
	resp, err := c.session.SendIQ(ctx, xml.NewDecoder(strings.NewReader(iqXML)))
	if err != nil {
		return "", fmt.Errorf("prosodytest: %s: iq %s: %w", c.JID(), iqXML, err)
	}
	defer resp.Close()
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(enc, resp); err != nil {
		return "", fmt.Errorf("prosodytest: %s: reading the answer to %s: %w", c.JID(), iqXML, err)
	}
	if err := enc.Flush(); err != nil {
		return "", err
	}
	return b.String(), nil
}
