package compare

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/ejabberdtest"
	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

var (
	flagProfile  = flag.String("compare.profile", envOr("ISTHMUS_COMPARE_PROFILE", "vhf-9600"), "emulated link profiles, comma-separated (link/emu names, with overrides: \"vhf-9600,loss=0.01\" is one profile; separate profiles with ';')")
	flagDuration = flag.Duration("compare.duration", envDuration("ISTHMUS_COMPARE_DURATION", 60*time.Second), "length of the chat phase of each run")
	flagInterval = flag.Duration("compare.interval", envDuration("ISTHMUS_COMPARE_INTERVAL", 4*time.Second), "each user sends one chat message per interval")
	flagLogins   = flag.Int("compare.logins", 3, "re-logins timed per side")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// requireServers skips without Prosody or ejabberd, except under CI.
func requireServers(t *testing.T) {
	t.Helper()
	prosodytest.Require(t)
	ejabberdtest.Require(t)
}

// TestCompare is `make compare`: for each profile, the workload direct and
// through the pair, then the table. It runs only when ISTHMUS_COMPARE is
// set (the Makefile sets it).
func TestCompare(t *testing.T) {
	if os.Getenv("ISTHMUS_COMPARE") == "" {
		t.Skip("set ISTHMUS_COMPARE=1 (make compare)")
	}
	requireServers(t)
	var runs [][2]Result
	var o Options
	for _, spec := range strings.Split(*flagProfile, ";") {
		p, err := emu.ParseProfile(strings.TrimSpace(spec))
		if err != nil {
			t.Fatal(err)
		}
		o = Options{Profile: p, Duration: *flagDuration, Interval: *flagInterval, Logins: *flagLogins, Seed: 1}
		var pr [2]Result
		for i, mode := range []string{Direct, Pair} {
			pr[i] = run(t, mode, o)
		}
		runs = append(runs, pr)
	}
	Report(os.Stdout, runs, o)
}

// TestCompareSmoke runs a short workload (no iq phase, 2 s of chat, one
// re-login per side) both ways over bgan-64k (with a short delay, to keep
// it quick), the direct and the pair run at the same time (each with its
// own servers and link), and checks that every chat and groupchat message
// arrives exactly once (run checks that), that presence at login was
// measured and that the pair moves fewer bytes over the link than direct
// S2S in each direction.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("real Prosody and ejabberd")
	}
	requireServers(t)
	p, err := emu.ParseProfile("bgan-64k,delay=50ms")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Profile: p, Duration: 2 * time.Second, Interval: 2 * time.Second, Logins: 1, NoIQ: true, Seed: 1, Quiet: time.Second}
	var res [2]Result // direct, pair
	t.Run("runs", func(t *testing.T) {
		for i, mode := range []string{Direct, Pair} {
			t.Run(mode, func(t *testing.T) {
				t.Parallel()
				res[i] = run(t, mode, o)
			})
		}
	})
	if t.Failed() {
		return
	}
	d, pr := res[0], res[1]
	for i := range 2 {
		if pr.Air[i].Bytes >= d.Air[i].Bytes {
			t.Errorf("%s: pair moved %d B, direct %d B", dirNames[i], pr.Air[i].Bytes, d.Air[i].Bytes)
		}
		if len(d.Login[i]) == 0 || len(pr.Login[i]) == 0 {
			t.Errorf("%s: no login presence measured", dirNames[i])
		}
	}
	if testing.Verbose() {
		Report(os.Stdout, [][2]Result{{d, pr}}, o)
	}
}
