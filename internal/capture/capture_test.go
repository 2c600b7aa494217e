package capture

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// recorder is a TCP proxy that records what each connecting server sends.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards conns
	conns  []*bytes.Buffer
	wg     sync.WaitGroup
}

func newRecorder(t *testing.T, target string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	return r
}

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.relay(c)
	}
}

// lockedBuffer is appended to by one relay and read after Close.
type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (r *recorder) relay(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer up.Close()
	buf := new(bytes.Buffer)
	r.mu.Lock()
	r.conns = append(r.conns, buf)
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		io.Copy(c, up)
		c.Close()
		close(done)
	}()
	io.Copy(io.MultiWriter(up, lockedBuffer{&r.mu, buf}), c)
	up.Close()
	<-done
}

func (r *recorder) close() [][]byte {
	r.ln.Close()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, b := range r.conns {
		out = append(out, b.Bytes())
	}
	return out
}

// TestCaptureProsody records real Prosody S2S traffic (see the package doc).
func TestCaptureProsody(t *testing.T) {
	outDir := os.Getenv("ISTHMUS_CAPTURE_OUT")
	if outDir == "" {
		t.Skip("set ISTHMUS_CAPTURE_OUT to record a corpus (make corpus)")
	}
	prosodytest.Require(t)
	name := env("ISTHMUS_CAPTURE_NAME", "prosody")
	seed, _ := strconv.ParseInt(env("ISTHMUS_CAPTURE_SEED", "1"), 10, 64)
	doms := strings.Split(env("ISTHMUS_CAPTURE_DOMAINS", "a.test,b.test"), ",")
	dur, err := time.ParseDuration(env("ISTHMUS_CAPTURE_DURATION", "2m"))
	if err != nil || len(doms) != 2 {
		t.Fatal("bad ISTHMUS_CAPTURE_DURATION or ISTHMUS_CAPTURE_DOMAINS")
	}
	nUsers, _ := strconv.Atoi(env("ISTHMUS_CAPTURE_USERS", "5"))
	rng := rand.New(rand.NewSource(seed))

	names := [2][]string{}
	pool := append([]string(nil), userNames...)
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	for i := 0; i < nUsers; i++ {
		names[0] = append(names[0], pool[i])
		names[1] = append(names[1], pool[nUsers+i])
	}
	var bare [2][]string
	for side := range 2 {
		for _, u := range names[side] {
			bare[side] = append(bare[side], u+"@"+doms[side])
		}
	}
	s2s := [2]int{prosodytest.FreePort(t), prosodytest.FreePort(t)}
	// rec[i] stands in front of server i: it records what the other sends.
	rec := [2]*recorder{
		newRecorder(t, fmt.Sprintf("127.0.0.1:%d", s2s[0])),
		newRecorder(t, fmt.Sprintf("127.0.0.1:%d", s2s[1])),
	}
	var srv [2]*prosodytest.Server
	for side := range 2 {
		other := 1 - side
		users := map[string]string{}
		rosters := map[string][]prosodytest.RosterItem{}
		for i, u := range names[side] {
			users[u] = "pw-" + u
			var items []prosodytest.RosterItem
			for j, b := range bare[other] {
				items = append(items, prosodytest.RosterItem{JID: b, Subscription: "both",
					Name: strings.ToUpper(names[other][j][:1]) + names[other][j][1:], Groups: []string{groups[(i+j)%len(groups)]}})
			}
			for j, b := range bare[side] {
				if j != i {
					items = append(items, prosodytest.RosterItem{JID: b, Subscription: "both", Groups: []string{"Team"}})
				}
			}
			rosters[u] = items
		}
		srv[side] = prosodytest.Start(t, prosodytest.Options{
			Domain:         doms[side],
			Users:          users,
			Rosters:        rosters,
			S2SPort:        s2s[side],
			Overrides:      map[string]string{doms[other]: rec[other].ln.Addr().String()},
			DialbackSecret: "capture-secret",
			LogLevel:       "info",
			ExtraConfig: `modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "dialback"; "carbons"; "posix";
	"s2s_connect_override"; "version"; "time"; "uptime"; "vcard"; "lastactivity"; "private" }`,
		})
	}

	w := &world{doms: [2]string{doms[0], doms[1]}, bare: bare, full: map[string]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for side := range 2 {
		for i, u := range names[side] {
			ur := rand.New(rand.NewSource(seed*1000 + int64(side*100+i)))
			g.Go(func() error { return w.user(gctx, t, doms[side], srv[side].C2SAddr, side, u, ur) })
		}
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Logf("workload: %v", err)
	}
	time.Sleep(2 * time.Second)
	for side := range 2 {
		srv[side].Stop()
	}
	total := 0
	for side := range 2 {
		dir := fmt.Sprintf("%s2%s", label(doms[1-side]), label(doms[side]))
		k := 0
		for _, data := range rec[side].close() {
			n := bytes.Count(data, []byte("<message")) + bytes.Count(data, []byte("<presence")) + bytes.Count(data, []byte("<iq"))
			if n < 10 {
				continue // a dialback verification connection
			}
			k++
			path := filepath.Join(outDir, fmt.Sprintf("%s-%s-%d.xml.gz", name, dir, k))
			writeGz(t, path, data)
			t.Logf("%s: %d bytes, about %d stanzas", path, len(data), n)
			total += n
		}
	}
	if total == 0 {
		t.Fatal("nothing recorded")
	}
}

// label is a domain's first label ("a" for a.test).
func label(d string) string {
	if i := strings.IndexByte(d, '.'); i > 0 {
		return d[:i]
	}
	return d
}

func writeGz(t *testing.T, path string, data []byte) {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// world is what the simulated users know of each other.
type world struct {
	doms [2]string
	bare [2][]string
	mu   sync.Mutex        // guards full
	full map[string]string // bare JID -> current full JID of a logged-in user
	// rich: TestCaptureServers: users also subscribe to the other side
	// and approve its requests, use MUC (services muc), PEP and vCards.
	rich bool
	muc  [2]string
}

func (w *world) setFull(bare, full string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if full == "" {
		delete(w.full, bare)
	} else {
		w.full[bare] = full
	}
}

func (w *world) fullOf(bare string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.full[bare]
}

// A client profile: how a real client writes ids, caps and chat messages.
type profile struct {
	node  string
	ver   string
	idFmt int // 0 UUID, 1 12-char alnum, 2 hex, 3 "purple" counter
}

var profiles = []profile{
	{"http://conversations.im", "lWr4DczMhEZvuasq5aeR0WKkAOA=", 0},
	{"https://gajim.org", "mIiJm9Qmn6Ef2KVBZNbRpgOLDK0=", 0},
	{"https://dino.im", "HVCsqHOCm9eRN2OHZdBd7SbCF1A=", 0},
	{"http://profanity-im.github.io", "r5OVYaiwlmjqM3ynPZFmVGU1ZBY=", 1},
	{"http://pidgin.im/", "AcN1/PEN8nq7AHD+9jpxMV4U6YM=", 3},
	{"http://monal-im.org/", "cBMdPBXkzqJhKAg6rpK4Ro/GlNo=", 2},
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

type user struct {
	w    *world
	r    *rand.Rand
	p    profile
	c    *prosodytest.Client
	side int
	ctr  int
	name string
	// rooms: MUC room JID -> our nick (rich world)
	rooms      map[string]string
	subscribed map[string]bool // rich: remote users we asked or approved
	// avatar is the SHA-1 of the user's avatar, or "".
	avatar string
}

func (u *user) id() string {
	switch u.p.idFmt {
	case 0:
		var b [16]byte
		u.r.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case 1:
		b := make([]byte, 12)
		for i := range b {
			b[i] = alnum[u.r.Intn(len(alnum))]
		}
		return string(b)
	case 2:
		var b [8]byte
		u.r.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	u.ctr++
	return fmt.Sprintf("purple%x%d", u.r.Intn(1<<16), u.ctr)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// send writes raw client XML on the stream.
func (u *user) send(ctx context.Context, raw string) error {
	d := xml.NewDecoder(strings.NewReader(raw))
	return u.c.Session().Send(ctx, rawTokens{d})
}

type rawTokens struct{ d *xml.Decoder }

func (r rawTokens) Token() (xml.Token, error) { return r.d.RawToken() }

func (u *user) presence(ctx context.Context) error {
	var b strings.Builder
	b.WriteString("<presence>")
	if u.r.Intn(3) == 0 {
		fmt.Fprintf(&b, "<show>%s</show>", []string{"away", "xa", "dnd", "chat"}[u.r.Intn(4)])
	}
	if u.r.Intn(2) == 0 {
		fmt.Fprintf(&b, "<status>%s</status>", esc(statuses[u.r.Intn(len(statuses))]))
	}
	fmt.Fprintf(&b, "<priority>%d</priority>", []int{0, 1, 5, 10, 24, 50}[u.r.Intn(6)])
	fmt.Fprintf(&b, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/>", u.p.node, u.p.ver)
	if u.avatar != "" {
		fmt.Fprintf(&b, "<x xmlns='vcard-temp:x:update'><photo>%s</photo></x>", u.avatar)
	} else if u.r.Intn(2) == 0 {
		b.WriteString("<x xmlns='vcard-temp:x:update'/>")
	}
	if u.r.Intn(6) == 0 {
		fmt.Fprintf(&b, "<idle xmlns='urn:xmpp:idle:1' since='%s'/>", time.Now().Add(-time.Duration(u.r.Intn(3600))*time.Second).UTC().Format("2006-01-02T15:04:05Z"))
	}
	b.WriteString("</presence>")
	return u.send(ctx, b.String())
}

func (u *user) remote() string {
	o := u.w.bare[1-u.side]
	return o[u.r.Intn(len(o))]
}

func (u *user) chat(ctx context.Context) error {
	to := u.remote()
	if f := u.w.fullOf(to); f != "" && u.r.Intn(2) == 0 {
		to = f
	}
	if u.r.Intn(2) == 0 {
		if err := u.send(ctx, fmt.Sprintf("<message type='chat' to='%s' id='%s'><composing xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>", to, u.id())); err != nil {
			return err
		}
		time.Sleep(time.Duration(200+u.r.Intn(1500)) * time.Millisecond)
	}
	id := u.id()
	var b strings.Builder
	fmt.Fprintf(&b, "<message type='chat' to='%s' id='%s'", to, id)
	fmt.Fprintf(&b, "><body>%s</body>", esc(u.body()))
	switch u.p.idFmt {
	case 0:
		fmt.Fprintf(&b, "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/><origin-id xmlns='urn:xmpp:sid:0' id='%s'/><active xmlns='http://jabber.org/protocol/chatstates'/>", id)
	case 1, 2:
		b.WriteString("<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/>")
	default:
		b.WriteString("<active xmlns='http://jabber.org/protocol/chatstates'/>")
	}
	b.WriteString("</message>")
	return u.send(ctx, b.String())
}

func (u *user) body() string {
	if u.r.Intn(4) == 0 {
		return shortReplies[u.r.Intn(len(shortReplies))]
	}
	n := 1 + u.r.Intn(3)
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, sentences[u.r.Intn(len(sentences))])
	}
	return strings.Join(parts, " ")
}

// answer sends receipts and markers for the messages received so far, and
// drops received presence.
func (u *user) answer(ctx context.Context) error {
	for {
		select {
		case p := <-u.c.Presences():
			if u.w.rich && p.Type == "subscribe" {
				b := bareOf(p.From)
				if err := u.send(ctx, fmt.Sprintf("<presence type='subscribed' to='%s'/>", b)); err != nil {
					return err
				}
				if !u.subscribed[b] {
					u.subscribed[b] = true
					if err := u.send(ctx, fmt.Sprintf("<presence type='subscribe' to='%s'/>", b)); err != nil {
						return err
					}
				}
			}
			continue
		case m := <-u.c.Messages():
			if m.Body == "" || m.ID == "" || m.From == "" {
				continue
			}
			if strings.Contains(m.Inner, "urn:xmpp:receipts") {
				if err := u.send(ctx, fmt.Sprintf("<message to='%s' id='%s'><received xmlns='urn:xmpp:receipts' id='%s'/></message>", m.From, u.id(), m.ID)); err != nil {
					return err
				}
			}
			if strings.Contains(m.Inner, "markable") && u.r.Intn(2) == 0 {
				if err := u.send(ctx, fmt.Sprintf("<message type='chat' to='%s' id='%s'><displayed xmlns='urn:xmpp:chat-markers:0' id='%s'/><store xmlns='urn:xmpp:hints'/></message>", bareOf(m.From), u.id(), m.ID)); err != nil {
					return err
				}
			}
		default:
			return nil
		}
	}
}

func bareOf(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func (u *user) query(ctx context.Context) error {
	dom := u.w.doms[1-u.side]
	to := u.remote()
	full := u.w.fullOf(to)
	var q string
	switch k := u.r.Intn(10); {
	case k == 0:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", dom, u.id())
	case k == 1:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", dom, u.id())
	case k == 2:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><query xmlns='jabber:iq:version'/></iq>", dom, u.id())
	case k == 3:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><time xmlns='urn:xmpp:time'/></iq>", dom, u.id())
	case k == 4:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><vCard xmlns='vcard-temp'/></iq>", to, u.id())
	case k == 5 && full != "":
		p := profiles[u.r.Intn(len(profiles))]
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><query xmlns='http://jabber.org/protocol/disco#info' node='%s#%s'/></iq>", full, u.id(), p.node, p.ver)
	case k == 6 && full != "":
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", full, u.id())
	case k == 7:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><query xmlns='jabber:iq:last'/></iq>", to, u.id())
	default:
		q = fmt.Sprintf("<iq type='get' to='%s' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", dom, u.id())
	}
	return u.send(ctx, q)
}

// user runs one account: log in, act, log out, again, until ctx ends.
func (w *world) user(ctx context.Context, t *testing.T, domain, c2sAddr string, side int, name string, r *rand.Rand) error {
	me := name + "@" + w.doms[side]
	subscribed := map[string]bool{}
	for ctx.Err() == nil {
		u := &user{w: w, r: r, side: side, p: profiles[r.Intn(len(profiles))], name: name, rooms: map[string]string{}, subscribed: subscribed}
		if r.Intn(3) > 0 {
			var h [20]byte
			r.Read(h[:])
			u.avatar = hex.EncodeToString(h[:])
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		c, err := prosodytest.DialAddr(dctx, t, domain, c2sAddr, name, "pw-"+name)
		cancel()
		if err != nil {
			return err
		}
		u.c = c
		w.setFull(me, c.JID())
		err = u.session(ctx, 20+r.Intn(100))
		w.setFull(me, "")
		if err == nil {
			err = u.send(ctx, "<presence type='unavailable'/>")
		}
		c.Close()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !sleep(ctx, time.Duration(1+r.Intn(8))*time.Second) {
			return nil
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// session sends the initial presence, then does actions more actions.
func (u *user) session(ctx context.Context, actions int) error {
	if err := u.presence(ctx); err != nil {
		return err
	}
	if u.w.rich && len(u.subscribed) == 0 {
		for _, b := range u.w.bare[1-u.side] {
			u.subscribed[b] = true
		}
		if err := u.subscribeAll(ctx); err != nil {
			return err
		}
	}
	for i := 0; i < actions; i++ {
		if !sleep(ctx, time.Duration(300+u.r.Intn(2500))*time.Millisecond) {
			return nil
		}
		if err := u.answer(ctx); err != nil {
			return err
		}
		var err error
		if u.w.rich && u.r.Intn(3) == 0 {
			if err := u.richAction(ctx); err != nil {
				return err
			}
			continue
		}
		switch k := u.r.Intn(20); {
		case k < 10:
			err = u.chat(ctx)
		case k < 13:
			err = u.presence(ctx)
		case k < 14 && u.r.Intn(3) == 0:
			var h [20]byte
			u.r.Read(h[:])
			u.avatar = hex.EncodeToString(h[:])
			err = u.presence(ctx)
		default:
			err = u.query(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var groups = []string{"Friends", "Work", "Family", "Crew", "Shore office"}

var userNames = []string{
	"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
	"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf",
	"captain", "bosun", "radio.officer", "chief-engineer", "purser", "ops", "medic", "navigator",
}

var statuses = []string{
	"On watch until 0400", "In a meeting", "Working from the bridge", "At lunch", "Back soon",
	"Do not disturb — drills", "Available", "Off duty", "Only urgent messages please",
	"Travelling", "Sleeping", "In port", "At sea", "Phone only", "Busy with the engine 🛠",
}

var shortReplies = []string{
	"ok", "OK!", "thanks", "Thanks!", "yes", "no", "👍", "sure", "on my way", "lol", "got it",
	"roger", "copy that", "will do", "👋", "np", "😊", "later", "hmm", "right",
}

var sentences = []string{
	"Are you around this afternoon?",
	"The weather report says the wind will pick up after midnight.",
	"Can you send me the updated crew list when you have a minute?",
	"We should arrive at the anchorage around 0600 local time.",
	"I've uploaded the logs to the usual place.",
	"Did the spare parts make it onto the last shipment?",
	"Call me when you're back at the desk.",
	"Fuel consumption is a bit higher than planned, nothing serious.",
	"The satellite link was down for about twenty minutes this morning.",
	"Happy birthday! 🎉",
	"Meeting moved to 14:30, same room.",
	"Please remember to sign the safety checklist & return it by Friday.",
	"How's the family doing?",
	"I'll check with the harbour master and get back to you.",
	"Thanks for the pictures, they look great.",
	"The generator is making that noise again <sigh>.",
	"Can we postpone the drill to tomorrow morning?",
	"Position at noon: 54°21'N 010°09'E, course 275, speed 11 knots.",
	"Let me know if you need anything from the shore office.",
	"Reminder: the maintenance window starts at 22:00 UTC.",
	"Is the new chart update installed on both ECDIS units?",
	"Sorry, I missed your call — was on deck.",
	"\"Quotes\" and 'apostrophes' are fine too.",
	"Good morning!",
	"Lunch is ready in the mess.",
	"Could you forward the invoice to accounting?",
	"We're expecting a pilot at the outer buoy at 1800.",
	"Waves are about three metres, everyone is fine.",
}
