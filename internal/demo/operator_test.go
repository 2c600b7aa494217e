package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/internal/demo"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// The operator's view of a running demo: /metrics with non-zero values,
// the status page in a real browser with a chart that shows data, and
// the report written at the end with plots that show data.
func TestOperatorViewOfRunningDemo(t *testing.T) {
	p, err := emu.ParseProfile("bgan-64k")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	sc := sim.DefaultScenario()
	sc.Intensity = 4 // enough traffic in a few seconds
	type result struct {
		r   demo.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := demo.Run(context.Background(), demo.Options{Profile: p, Duration: 30 * time.Second, Seed: 3, Scenario: sc, AdminA: ln})
		done <- result{r, err}
	}()

	// Wait for traffic and a few seconds of history. The demo runs 30 s so
	// that it is still serving when the browser, slow to start on a loaded
	// machine, asks for the page.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st gateway.Status
		if body, err := fetch(base + "/api/status?window=60"); err == nil && json.Unmarshal(body, &st) == nil &&
			st.Out.WireBytes > 0 && st.In.WireBytes > 0 && len(st.Samples) >= 7 && st.RTTms > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no traffic on the status API")
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("metrics", func(t *testing.T) { checkMetrics(t, base) })
	t.Run("browser", func(t *testing.T) { checkBrowser(t, base) })

	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Run("report", func(t *testing.T) { checkReport(t, res.r) })
}

func fetch(url string) ([]byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func checkMetrics(t *testing.T, base string) {
	body, err := fetch(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, m := range []string{
		`isthmus_stanzas_total{direction="out",kind="message"}`,
		`isthmus_stanzas_total{direction="in",kind="presence"}`,
		`isthmus_raw_bytes_total{direction="out"}`,
		`isthmus_link_bytes_total{direction="out"}`,
		`isthmus_wire_bytes_total{direction="in"}`,
		`isthmus_savings_ratio{direction="out"}`,
		`isthmus_link_up`,
		`isthmus_link_connects_total`,
		`isthmus_link_rtt_seconds`,
		`isthmus_s2s_connections{direction="in",state="connected"}`,
		`isthmus_s2s_connections{direction="out",state="established"}`,
		`isthmus_s2s_events_total{event="in-auth",reason=""}`,
		`isthmus_presence_mirror_entries{table="remote"}`,
		`isthmus_presence_fanout_absorbed_total`,
		`isthmus_presence_probes_total{result="forwarded"}`,
	} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m) + ` (\S+)$`)
		v := re.FindStringSubmatch(text)
		if v == nil {
			t.Errorf("/metrics lacks %s", m)
			continue
		}
		if f, _ := strconv.ParseFloat(v[1], 64); f <= 0 {
			t.Errorf("%s = %s, want > 0", m, v[1])
		}
	}
	for _, m := range []string{"isthmus_link_queue_stanzas", "isthmus_link_queue_oldest_age_seconds", "isthmus_spool_bytes",
		"isthmus_presence_duplicates_suppressed_total", "isthmus_presence_probes_total", "isthmus_presence_mirror_entries",
		"isthmus_dropped_stanzas_total", "isthmus_link_resumes_total", "isthmus_link_epoch_restarts_total",
		"isthmus_link_queue_dropped_total", "isthmus_bounced_stanzas_total", "isthmus_caps_disco_answered_locally_total"} {
		if !strings.Contains(text, "\n"+m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// artifactDir is where the screenshot is kept: $ISTHMUS_ARTIFACTS, or the
// test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("ISTHMUS_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI is set: .ci/run installs it)")
	}
	t.Skip("chromium is not installed; apt-get install -y chromium")
	return ""
}

func checkBrowser(t *testing.T, base string) {
	bin := chromium(t)
	shot := filepath.Join(artifactDir(t), "status-page.png")
	profile := t.TempDir()
	args := func(extra ...string) []string {
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
			"--no-first-run", "--user-data-dir=" + profile, "--window-size=1100,1300", "--virtual-time-budget=5000"}, extra...)
	}
	// run runs chromium until done says its work is there. On a loaded
	// machine headless chromium sometimes exits 0 having written nothing
	// (no DOM on stdout, no screenshot file); that is retried, up to three
	// times, and its stderr shown if it never succeeds.
	run := func(a []string, done func(out []byte) bool) []byte {
		var stderr bytes.Buffer
		for try := 1; ; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			stderr.Reset()
			cmd := exec.CommandContext(ctx, bin, a...)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			cancel()
			if err != nil {
				t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
			}
			if done(out) {
				return out
			}
			if try == 3 {
				t.Logf("%s did its work in none of %d tries; its last stderr:\n%s", bin, try, stderr.String())
				return out
			}
		}
	}
	dom := string(run(args("--dump-dom", base+"/"), func(out []byte) bool { return bytes.Contains(out, []byte("data-refreshed=")) }))
	// The script ran (it marks the body after each refresh) and the charts
	// it fetched have points.
	if !strings.Contains(dom, "data-refreshed=") {
		t.Errorf("the status page's script did not refresh the page:\n%.1500s", dom)
	}
	m := regexp.MustCompile(`data-name="out raw" data-points="(\d+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no out raw series in the rendered page:\n%.3000s", dom)
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("the rate chart has %d points", n)
	}
	if !regexp.MustCompile(`data-name="out \(to peer\)" data-points="[1-9]`).MatchString(dom) {
		t.Error("the ratio chart has no points")
	}
	if strings.Contains(dom, "gateway not reachable") {
		t.Error("the script could not reach the gateway")
	}

	run(args("--screenshot="+shot, base+"/"), func([]byte) bool { _, err := os.Stat(shot); return err == nil })
	t.Logf("status page screenshot: %s", shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The lines are drawn in the series' colours: count those pixels.
	outRaw := countColor(img, 0xd9, 0x48, 0x0f)
	inRaw := countColor(img, 0x18, 0x64, 0xab)
	t.Logf("screenshot %v: %d out-raw pixels, %d in-raw pixels", img.Bounds().Size(), outRaw, inRaw)
	if outRaw < 100 || inRaw < 50 {
		t.Errorf("the screenshot shows little of the chart lines: %d out-raw, %d in-raw pixels", outRaw, inRaw)
	}
}

func countColor(img image.Image, r, g, b uint8) int {
	n := 0
	bd := img.Bounds()
	near := func(a uint32, b uint8) bool { d := int(a>>8) - int(b); return d > -24 && d < 24 }
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if near(cr, r) && near(cg, g) && near(cb, b) {
				n++
			}
		}
	}
	return n
}

func checkReport(t *testing.T, r demo.Result) {
	var b bytes.Buffer
	if err := demo.WriteReport(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	path := filepath.Join(artifactDir(t), "demo-report.html")
	os.WriteFile(path, b.Bytes(), 0o644)
	t.Logf("report: %s (%d bytes, %d samples)", path, b.Len(), len(r.Samples))
	for _, series := range []string{"raw (plain S2S XML)", "wire (TLS + TCP/IP)", "a → b", "b → a"} {
		re := regexp.MustCompile(`data-name="` + regexp.QuoteMeta(series) + `" data-points="(\d+)"`)
		all := re.FindAllStringSubmatch(html, -1)
		if len(all) == 0 {
			t.Errorf("report has no %q series", series)
		}
		for _, m := range all {
			if n, _ := strconv.Atoi(m[1]); n < 5 {
				t.Errorf("series %q has %d points", series, n)
			}
		}
	}
	bars := regexp.MustCompile(`class="bar" data-count="([0-9.]+)"`).FindAllStringSubmatch(html, -1)
	total := 0.0
	for _, m := range bars {
		f, _ := strconv.ParseFloat(m[1], 64)
		total += f
	}
	if want := float64(len(r.Latencies[0]) + len(r.Latencies[1])); total != want || total == 0 {
		t.Errorf("latency histograms count %v messages, want %v", total, want)
	}
	if strings.Contains(html, "no data yet") {
		t.Error("a report plot is empty")
	}
	if regexp.MustCompile(`(src|href)\s*=\s*["']?(https?:)?//`).MatchString(html) {
		t.Error("the report loads something from elsewhere")
	}
	for _, want := range []string{"savings (raw / wire)", "bgan-64k", "64 kbit/s"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
