package capture

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/isthmus-xmpp/isthmus/internal/ejabberdtest"
	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
	"github.com/isthmus-xmpp/isthmus/internal/testpki"
)

// slixmppPython is Debian's interpreter, which has python3-slixmpp and
// python3-aioxmpp.
const slixmppPython = "/usr/bin/python3"

// pythonDrivers are the client libraries driven by a Python script: the
// value of ISTHMUS_CAPTURE_CLIENTS, the module the script imports, the
// script in this directory.
var pythonDrivers = map[string]struct{ module, script string }{
	"slixmpp": {"slixmpp", "slixmpp_driver.py"},
	"aioxmpp": {"aioxmpp", "aioxmpp_driver.py"},
}

// TestCaptureServers records real S2S traffic between a real ejabberd 23.01
// and a real Prosody 0.12, each with a MUC service, driven by clients of
// one implementation: ISTHMUS_CAPTURE_CLIENTS=slixmpp (slixmpp_driver.py,
// python3-slixmpp), aioxmpp (aioxmpp_driver.py, python3-aioxmpp) or
// mellium (the clients of TestCaptureProsody, with MUC, PEP and vCard
// photos added). S2S is plain (ejabberd s2s_use_starttls:
// false, Prosody without certificates) so that the recording proxies in
// front of each server see the XML. Each file is what one server wrote on
// one outgoing S2S connection (servers open one per pair of domains), named
// SERVER-CLIENTS-FROM2TO-K.xml.gz (FROM, TO: "ej", "ejmuc", "pr", "prmuc").
// Skipped unless ISTHMUS_CAPTURE_OUT is set (make corpus).
func TestCaptureServers(t *testing.T) {
	outDir := os.Getenv("ISTHMUS_CAPTURE_OUT")
	if outDir == "" {
		t.Skip("set ISTHMUS_CAPTURE_OUT to record a corpus (make corpus)")
	}
	prosodytest.Require(t)
	ejabberdtest.Require(t)
	clients := env("ISTHMUS_CAPTURE_CLIENTS", "slixmpp")
	driver, isPython := pythonDrivers[clients]
	if !isPython && clients != "mellium" {
		t.Fatalf("ISTHMUS_CAPTURE_CLIENTS=%q: want slixmpp, aioxmpp or mellium", clients)
	}
	if isPython {
		if out, err := exec.Command(slixmppPython, "-c", "import "+driver.module).CombinedOutput(); err != nil {
			t.Fatalf("%s cannot import %s (apt-get install python3-%s): %v: %s", slixmppPython, driver.module, driver.module, err, out)
		}
	}
	seed, _ := strconv.ParseInt(env("ISTHMUS_CAPTURE_SEED", "1"), 10, 64)
	doms := strings.Split(env("ISTHMUS_CAPTURE_DOMAINS", "ej.test,pr.test"), ",")
	dur, err := time.ParseDuration(env("ISTHMUS_CAPTURE_DURATION", "90s"))
	if err != nil || len(doms) != 2 {
		t.Fatal("bad ISTHMUS_CAPTURE_DURATION or ISTHMUS_CAPTURE_DOMAINS")
	}
	nUsers, _ := strconv.Atoi(env("ISTHMUS_CAPTURE_USERS", "5"))
	ejDom, prDom := doms[0], doms[1]
	ejMUC, prMUC := "conference."+ejDom, "conference."+prDom
	labels := map[string]string{ejDom: "ej", ejMUC: "ejmuc", prDom: "pr", prMUC: "prmuc"}

	rng := rand.New(rand.NewSource(seed))
	pool := append([]string(nil), userNames...)
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	names := [2][]string{pool[:nUsers], pool[nUsers : 2*nUsers]} // 0: ejabberd, 1: Prosody
	users := [2]map[string]string{{}, {}}
	for side := range 2 {
		for _, u := range names[side] {
			users[side][u] = "pw-" + u
		}
	}

	ca, err := testpki.NewCA("isthmus capture CA")
	if err != nil {
		t.Fatal(err)
	}
	ejCert, err := ca.WriteFiles(t.TempDir(), "ejabberd", ejDom, ejMUC)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := ejabberdtest.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	prS2S := prosodytest.FreePort(t)
	// recEj records what Prosody sends to ejabberd, recPr what ejabberd
	// sends to Prosody. ejabberd's S2S port is known only after it starts.
	recPr := newRecorder(t, fmt.Sprintf("127.0.0.1:%d", prS2S))
	recPrPort := recPr.ln.Addr().(*net.TCPAddr).Port
	dns.SetSRV(prDom, recPrPort)
	dns.SetSRV(prMUC, recPrPort)
	ej := ejabberdtest.Start(t, ejabberdtest.Options{
		Domain: ejDom, MUC: true, MUCHistory: 20, DNSPort: dns.Port(), TLS: ejCert,
		S2SStartTLS: "false", Users: users[0],
		Modules: `  mod_pubsub:
    access_createnode: local
    plugins: ["flat", "pep"]
  mod_vcard: {}
  mod_vcard_xupdate: {}
  mod_avatar: {}
  mod_time: {}
  mod_carboncopy: {}`,
	})
	recEj := newRecorder(t, ej.S2SAddr)
	pr := prosodytest.Start(t, prosodytest.Options{
		Domain:         prDom,
		Users:          users[1],
		S2SPort:        prS2S,
		Overrides:      map[string]string{ejDom: recEj.ln.Addr().String(), ejMUC: recEj.ln.Addr().String()},
		DialbackSecret: "capture-secret",
		LogLevel:       "info",
		ExtraConfig: fmt.Sprintf(`modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "dialback"; "carbons"; "posix";
	"s2s_connect_override"; "version"; "time"; "uptime"; "vcard_legacy"; "pep"; "lastactivity"; "private" }
Component %q "muc"
	muc_room_default_history_length = 20
	modules_enabled = { "muc_mam" }`, prMUC),
	})

	start := time.Now()
	switch clients {
	case "slixmpp", "aioxmpp":
		runPythonDriver(t, driver.script, seed, dur, [2]side{{ejDom, ej.C2SAddr, ejMUC, users[0]}, {prDom, pr.C2SAddr, prMUC, users[1]}})
	case "mellium":
		w := &world{doms: [2]string{ejDom, prDom}, full: map[string]string{}, rich: true, muc: [2]string{ejMUC, prMUC}}
		for side := range 2 {
			for _, u := range names[side] {
				w.bare[side] = append(w.bare[side], u+"@"+doms[side])
			}
		}
		addrs := [2]string{ej.C2SAddr, pr.C2SAddr}
		ctx, cancel := context.WithTimeout(context.Background(), dur)
		defer cancel()
		g, gctx := errgroup.WithContext(ctx)
		for side := range 2 {
			for i, u := range names[side] {
				ur := rand.New(rand.NewSource(seed*1000 + int64(side*100+i)))
				g.Go(func() error { return w.user(gctx, t, doms[side], addrs[side], side, u, ur) })
			}
		}
		if err := g.Wait(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Logf("workload: %v", err)
		}
	}
	t.Logf("workload done in %v", time.Since(start).Round(time.Second))
	time.Sleep(2 * time.Second)
	pr.Stop()
	ej.Stop()

	header := regexp.MustCompile(`<stream:stream[^>]*>`)
	attr := func(h, name string) string {
		m := regexp.MustCompile(`\s` + name + `=['"]([^'"]*)['"]`).FindStringSubmatch(h)
		if m == nil {
			return ""
		}
		return m[1]
	}
	total := 0
	for i, rec := range []*recorder{recPr, recEj} {
		server := []string{"ejabberd", "prosody"}[i]
		seq := map[string]int{}
		for _, data := range rec.close() {
			n := bytes.Count(data, []byte("<message")) + bytes.Count(data, []byte("<presence")) + bytes.Count(data, []byte("<iq"))
			if n < 10 {
				continue // a dialback verification connection
			}
			h := string(header.Find(data))
			from, to := labels[attr(h, "from")], labels[attr(h, "to")]
			if from == "" || to == "" {
				t.Errorf("%s stream with header %q: unknown domains", server, h)
				continue
			}
			dir := from + "2" + to
			seq[dir]++
			path := filepath.Join(outDir, fmt.Sprintf("%s-%s-%s-%d.xml.gz", server, clients, dir, seq[dir]))
			writeGz(t, path, data)
			t.Logf("%s: %d bytes, about %d stanzas", path, len(data), n)
			total += n
		}
	}
	if total == 0 {
		t.Fatal("nothing recorded")
	}
}

type side struct {
	Domain string            `json:"domain"`
	Addr   string            `json:"-"`
	MUC    string            `json:"muc"`
	Users  map[string]string `json:"users"`
}

// runPythonDriver runs script (slixmpp_driver.py, aioxmpp_driver.py) for
// dur against both servers.
func runPythonDriver(t *testing.T, script string, seed int64, dur time.Duration, sides [2]side) {
	type jsonSide struct {
		side
		HostPort [2]any `json:"addr"`
	}
	var cfg struct {
		Seed     int64      `json:"seed"`
		Duration float64    `json:"duration"`
		Sides    []jsonSide `json:"sides"`
	}
	cfg.Seed, cfg.Duration = seed, dur.Seconds()
	for _, s := range sides {
		host, port, err := net.SplitHostPort(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		cfg.Sides = append(cfg.Sides, jsonSide{s, [2]any{host, p}})
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "driver.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, slixmppPython, "-B", script, path) // -B: no __pycache__ in the tree
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	t.Logf("%s", strings.TrimSpace(out.String()))
}

// Mellium users in a rich world (TestCaptureServers) also subscribe to
// the other side, join MUC rooms on both servers, publish PEP and vCards
// with photos.

var rooms = []string{"deck", "bridge", "engine-room", "mess"}

func (u *user) richAction(ctx context.Context) error {
	switch k := u.r.Intn(10); {
	case k < 6:
		return u.muc(ctx)
	case k < 8:
		return u.pep(ctx)
	default:
		return u.vcard(ctx)
	}
}

func (u *user) muc(ctx context.Context) error {
	if len(u.rooms) == 0 || len(u.rooms) < 3 && u.r.Intn(6) == 0 {
		svc := u.w.muc[u.side] // ejabberd lets only its own users create rooms
		if u.r.Intn(2) == 0 {
			svc = u.w.muc[1-u.side]
		}
		room := rooms[u.r.Intn(len(rooms))] + "@" + svc
		if _, ok := u.rooms[room]; ok {
			return nil
		}
		nick := strings.ToUpper(u.name[:1]) + u.name[1:]
		u.rooms[room] = nick
		hist := []int{0, 5, 20}[u.r.Intn(3)]
		if err := u.send(ctx, fmt.Sprintf("<presence to='%s/%s' id='%s'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='%d'/></x><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/></presence>", room, nick, u.id(), hist, u.p.node, u.p.ver)); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
		// Instant room (an error answer when we are not the owner).
		return u.send(ctx, fmt.Sprintf("<iq type='set' to='%s' id='%s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_roomname'><value>%s</value></field><field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query></iq>", room, u.id(), strings.ToUpper(room[:1])+strings.SplitN(room, "@", 2)[0][1:]))
	}
	all := make([]string, 0, len(u.rooms))
	for r := range u.rooms {
		all = append(all, r)
	}
	sort.Strings(all) // map order is random: pick with the seeded rng
	room := all[u.r.Intn(len(all))]
	switch k := u.r.Intn(10); {
	case k < 7:
		return u.send(ctx, fmt.Sprintf("<message type='groupchat' to='%s' id='%s'><body>%s</body><origin-id xmlns='urn:xmpp:sid:0' id='%s'/></message>", room, u.id(), esc(u.body()), u.id()))
	case k < 8:
		nick := u.rooms[room] + "_"
		u.rooms[room] = nick
		return u.send(ctx, fmt.Sprintf("<presence to='%s/%s'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/></presence>", room, nick, u.p.node, u.p.ver))
	case k < 9:
		return u.send(ctx, fmt.Sprintf("<message type='groupchat' to='%s' id='%s'><subject>%s</subject></message>", room, u.id(), esc(statuses[u.r.Intn(len(statuses))])))
	default:
		nick := u.rooms[room]
		delete(u.rooms, room)
		return u.send(ctx, fmt.Sprintf("<presence type='unavailable' to='%s/%s'/>", room, nick))
	}
}

func (u *user) pep(ctx context.Context) error {
	var item string
	switch u.r.Intn(4) {
	case 0:
		item = fmt.Sprintf("<publish node='http://jabber.org/protocol/nick'><item><nick xmlns='http://jabber.org/protocol/nick'>%s</nick></item></publish>", esc(strings.ToUpper(u.name[:1])+u.name[1:]))
	case 1:
		item = fmt.Sprintf("<publish node='http://jabber.org/protocol/mood'><item><mood xmlns='http://jabber.org/protocol/mood'><%s/><text>%s</text></mood></item></publish>", []string{"happy", "tired", "busy", "relaxed"}[u.r.Intn(4)], esc(shortReplies[u.r.Intn(len(shortReplies))]))
	case 2:
		item = fmt.Sprintf("<publish node='http://jabber.org/protocol/geoloc'><item><geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>%.5f</lat><lon>%.5f</lon><accuracy>20</accuracy></geoloc></item></publish>", u.r.Float64()*120-60, u.r.Float64()*360-180)
	default:
		data := make([]byte, 1000+u.r.Intn(3000))
		u.r.Read(data)
		id := fmt.Sprintf("%x", data[:20])
		if err := u.send(ctx, fmt.Sprintf("<iq type='set' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:data'><item id='%s'><data xmlns='urn:xmpp:avatar:data'>%s</data></item></publish></pubsub></iq>", u.id(), id, base64.StdEncoding.EncodeToString(data))); err != nil {
			return err
		}
		item = fmt.Sprintf("<publish node='urn:xmpp:avatar:metadata'><item id='%s'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='%d' id='%s' height='64' width='64' type='image/png'/></metadata></item></publish>", id, len(data), id)
	}
	return u.send(ctx, fmt.Sprintf("<iq type='set' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'>%s</pubsub></iq>", u.id(), item))
}

func (u *user) vcard(ctx context.Context) error {
	if u.r.Intn(3) > 0 {
		return u.send(ctx, fmt.Sprintf("<iq type='get' to='%s' id='%s'><vCard xmlns='vcard-temp'/></iq>", u.remote(), u.id()))
	}
	photo := make([]byte, 1500+u.r.Intn(3000))
	u.r.Read(photo)
	b64 := base64.StdEncoding.EncodeToString(photo)
	var lines []string // vCard clients wrap BINVAL at 76 characters
	for len(b64) > 76 {
		lines, b64 = append(lines, b64[:76]), b64[76:]
	}
	lines = append(lines, b64)
	return u.send(ctx, fmt.Sprintf("<iq type='set' id='%s'><vCard xmlns='vcard-temp'><FN>%s</FN><NICKNAME>%s</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard></iq>", u.id(), esc(strings.ToUpper(u.name[:1])+u.name[1:]+" Example"), esc(u.name), strings.Join(lines, "\n")))
}

// subscribeAll asks every user of the other side for a subscription.
func (u *user) subscribeAll(ctx context.Context) error {
	for _, b := range u.w.bare[1-u.side] {
		if err := u.send(ctx, fmt.Sprintf("<presence type='subscribe' to='%s'/>", b)); err != nil {
			return err
		}
	}
	return nil
}
