package compare

import (
	"fmt"
	"io"
	"time"
)

// dirNames are the row labels of the two directions.
var dirNames = [2]string{"a→b", "b→a"}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", a/b)
}

// Report writes the Markdown table for each profile's pair of runs: per
// direction, the bytes on the emulated link, chat latency p50/p90, MUC
// latency p50, presence at login (median), and direct ÷ pair.
func Report(w io.Writer, runs [][2]Result, o Options) {
	fmt.Fprintf(w, "\n`make compare`: Prosody 0.12 (a.test) ↔ ejabberd 23.01 (b.test), real clients; one workload of %v chat at one message per %v per user (4 users), a MUC room on b.test with occupants from both sides, %d re-logins per side, iq ping/version/disco.\n\n",
		o.Duration, o.Interval, o.Logins)
	fmt.Fprintln(w, "| profile | run | direction | link bytes | of which chat phase | chat p50 | chat p90 | MUC p50 | login presence |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|")
	for _, pr := range runs {
		d, p := pr[0], pr[1]
		for i := range 2 {
			for _, r := range []Result{d, p} {
				name := "direct S2S"
				if r.Mode == Pair {
					name = "isthmus pair"
				}
				fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %s | %s |\n", r.Profile, name, dirNames[i], r.Air[i].Bytes, r.phase("chat")[i],
					ms(pct(r.Chat[i], 50)), ms(pct(r.Chat[i], 90)), ms(pct(r.Groupchat[i], 50)), ms(pct(r.Login[i], 50)))
			}
			f := func(a, b time.Duration) string { return ratio(float64(a), float64(b)) }
			fmt.Fprintf(w, "| %s | **direct ÷ pair** | %s | **%s** | %s | %s | %s | %s | %s |\n", d.Profile, dirNames[i],
				ratio(float64(d.Air[i].Bytes), float64(p.Air[i].Bytes)), ratio(float64(d.phase("chat")[i]), float64(p.phase("chat")[i])),
				f(pct(d.Chat[i], 50), pct(p.Chat[i], 50)), f(pct(d.Chat[i], 90), pct(p.Chat[i], 90)),
				f(pct(d.Groupchat[i], 50), pct(p.Groupchat[i], 50)), f(pct(d.Login[i], 50), pct(p.Login[i], 50)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Link bytes: TCP payload on the emulated link (TLS records: STARTTLS S2S direct, the gateways' link through the pair) + 52 B TCP/IP header per segment and per delayed ACK (one per two segments) + handshakes, counted by the emulator the same way for both runs, for the whole workload; the chat phase alone (after every connection is up) is the steady-state figure. Direction a→b: bytes sent from a's side; chat and MUC latency of messages sent on a.test and received on b.test; login presence: a user on b.test logs in, until its client holds the a.test contact's presence.")
	fmt.Fprintln(w)
	for _, pr := range runs {
		for _, r := range pr {
			fmt.Fprintf(w, "%s %-6s: %d+%d chat and %d+%d groupchat sent a→b+b→a in %v;", r.Profile, r.Mode, r.ChatSent[0], r.ChatSent[1], r.GroupSent[0], r.GroupSent[1], r.Elapsed.Round(time.Second))
			for _, ph := range r.Phases {
				fmt.Fprintf(w, " %s %d/%d B", ph.Name, ph.AB, ph.BA)
			}
			fmt.Fprintf(w, "; iq rtt p50 a %s b %s\n", ms(pct(r.IQ[0], 50)), ms(pct(r.IQ[1], 50)))
		}
		d, p := pr[0], pr[1]
		tot := func(r Result) int64 { return r.Air[0].Bytes + r.Air[1].Bytes }
		fmt.Fprintf(w, "compare_link_bytes profile=%s direct=%d pair=%d ratio=%.2f\n", d.Profile, tot(d), tot(p), float64(tot(d))/float64(max(tot(p), 1)))
	}
}

// phase returns the bytes a→b and b→a of the named phase.
func (r Result) phase(name string) [2]int64 {
	for _, p := range r.Phases {
		if p.Name == name {
			return [2]int64{p.AB, p.BA}
		}
	}
	return [2]int64{}
}
