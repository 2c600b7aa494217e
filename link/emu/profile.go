package emu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultMTU is the segment size used when a Profile leaves MTU at zero: the
// TCP payload of a 1500-byte Ethernet frame.
const DefaultMTU = 1460

// Profile describes one emulated link. Rate, loss and outages apply to each
// direction independently (a full-duplex radio pair).
type Profile struct {
	Name    string
	RateBPS int64         // bit/s; 0 means unlimited
	Delay   time.Duration // one-way propagation and modem delay
	Loss    float64       // 0..1, per datagram or stream segment
	// BurstLen is the mean length of a run of losses (Gilbert-Elliott);
	// 0 or 1 means independent losses.
	BurstLen int
	// OutageEvery is the [min, max] gap between the end of one outage and
	// the start of the next; zero means no random outages.
	OutageEvery [2]time.Duration
	// OutageLen is the [min, max] length of an outage.
	OutageLen [2]time.Duration
	// MTU is the largest stream segment or datagram in bytes; 0 means
	// DefaultMTU. Datagrams larger than MTU are dropped.
	MTU    int
	Source string // where the figures come from
}

var builtin = map[string]Profile{
	"hf-2400": {
		Name: "hf-2400", RateBPS: 2400, Delay: 3 * time.Second, Loss: 0,
		OutageEvery: [2]time.Duration{5 * time.Minute, 30 * time.Minute},
		OutageLen:   [2]time.Duration{30 * time.Second, 10 * time.Minute},
		Source: "MIL-STD-188-110 HF serial-tone modem, 2400 bit/s, with STANAG 5066 ARQ (residual loss ~0, " +
			"multi-second turnaround); fades and propagation changes cause outages of minutes",
	},
	"uhf-dama-2400": {
		Name: "uhf-dama-2400", RateBPS: 2400, Delay: time.Second, Loss: 0.01,
		Source: "DAMA UHF SATCOM, MIL-STD-188-181/182: 2400 bit/s user channels; GEO hop plus " +
			"TDMA frame/slot assignment gives ~1 s one-way",
	},
	"iridium-2400": {
		Name: "iridium-2400", RateBPS: 2400, Delay: 750 * time.Millisecond, Loss: 0.01,
		Source: "Iridium circuit-switched data / SBD / Certus 2.4 kbit/s class: 2400 bit/s; " +
			"LEO with inter-satellite links and gateway, ~0.5-1 s one-way observed",
	},
	"vhf-9600": {
		Name: "vhf-9600", RateBPS: 9600, Delay: 50 * time.Millisecond, Loss: 0.005,
		Source: "AX.25 on VHF, 9600 baud G3RUH FSK modems: 9600 bit/s; TX delay/keying ~50 ms",
	},
	"bgan-64k": {
		Name: "bgan-64k", RateBPS: 64000, Delay: 350 * time.Millisecond, Loss: 0.005,
		Source: "Inmarsat BGAN streaming IP 64 kbit/s class; GEO, ~280 ms propagation plus RAN",
	},
	"geo-1m": {
		Name: "geo-1m", RateBPS: 1_000_000, Delay: 300 * time.Millisecond, Loss: 0.005, BurstLen: 4,
		Source: "GEO VSAT, DVB-S2/RCS2 class, 1 Mbit/s; ~270 ms propagation, rain-fade loss comes in bursts",
	},
	"lan": {
		Name:   "lan",
		Source: "no emulation: unlimited rate, no delay, no loss",
	},
}

// Lookup returns the built-in profile called name.
func Lookup(name string) (Profile, bool) {
	p, ok := builtin[name]
	return p, ok
}

// Names returns the names of the built-in profiles, sorted.
func Names() []string {
	names := make([]string, 0, len(builtin))
	for n := range builtin {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (p Profile) mtu() int {
	if p.MTU <= 0 {
		return DefaultMTU
	}
	return p.MTU
}

// String returns the profile as a spec that ParseProfile accepts, giving
// every field explicitly: "vhf-9600,rate=9600,delay=50ms,loss=0.005,...".
func (p Profile) String() string {
	var b strings.Builder
	b.WriteString(p.Name)
	fmt.Fprintf(&b, ",rate=%d,delay=%s,loss=%s", p.RateBPS, p.Delay, strconv.FormatFloat(p.Loss, 'g', -1, 64))
	if p.BurstLen > 1 {
		fmt.Fprintf(&b, ",burst=%d", p.BurstLen)
	}
	if p.OutageEvery[1] > 0 {
		fmt.Fprintf(&b, ",outage=%s-%s/%s-%s", p.OutageEvery[0], p.OutageEvery[1], p.OutageLen[0], p.OutageLen[1])
	} else {
		b.WriteString(",outage=none")
	}
	fmt.Fprintf(&b, ",mtu=%d", p.mtu())
	return b.String()
}

// ParseProfile parses a built-in profile name optionally followed by
// comma-separated overrides:
//
//	vhf-9600,rate=4800,delay=200ms,loss=0.02,burst=3,outage=20s-40s/5s-15s,mtu=576
//
// rate takes an optional k or M suffix (decimal); loss is a fraction or a
// percentage ("2%"); outage is EVERY/LEN with each a duration or a min-max
// range, or "none". Errors name the offending token.
func ParseProfile(spec string) (Profile, error) {
	tokens := strings.Split(strings.TrimSpace(spec), ",")
	name := strings.TrimSpace(tokens[0])
	p, ok := Lookup(name)
	if !ok {
		return Profile{}, fmt.Errorf("emu: unknown profile %q (have %s)", name, strings.Join(Names(), ", "))
	}
	for _, tok := range tokens[1:] {
		tok = strings.TrimSpace(tok)
		key, val, found := strings.Cut(tok, "=")
		if !found || val == "" {
			return Profile{}, fmt.Errorf("emu: bad override %q: want key=value", tok)
		}
		bad := func(err error) error {
			return fmt.Errorf("emu: bad override %q: %w", tok, err)
		}
		switch key {
		case "rate":
			r, err := parseRate(val)
			if err != nil {
				return Profile{}, bad(err)
			}
			p.RateBPS = r
		case "delay":
			d, err := time.ParseDuration(val)
			if err != nil {
				return Profile{}, bad(err)
			}
			if d < 0 {
				return Profile{}, bad(fmt.Errorf("negative delay"))
			}
			p.Delay = d
		case "loss":
			l, err := parseLoss(val)
			if err != nil {
				return Profile{}, bad(err)
			}
			p.Loss = l
		case "burst":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return Profile{}, bad(fmt.Errorf("want an integer >= 1"))
			}
			p.BurstLen = n
		case "outage":
			if val == "none" || val == "0" {
				p.OutageEvery, p.OutageLen = [2]time.Duration{}, [2]time.Duration{}
				continue
			}
			every, length, ok := strings.Cut(val, "/")
			if !ok {
				return Profile{}, bad(fmt.Errorf("want EVERY/LEN, e.g. 20s-40s/5s-15s"))
			}
			e, err := parseRange(every)
			if err != nil {
				return Profile{}, bad(err)
			}
			l, err := parseRange(length)
			if err != nil {
				return Profile{}, bad(err)
			}
			if e[1] <= 0 || l[1] <= 0 {
				return Profile{}, bad(fmt.Errorf("outage gap and length must be positive"))
			}
			p.OutageEvery, p.OutageLen = e, l
		case "mtu":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 65535 {
				return Profile{}, bad(fmt.Errorf("want an integer in 1..65535"))
			}
			p.MTU = n
		default:
			return Profile{}, fmt.Errorf("emu: unknown override key in %q (want rate, delay, loss, burst, outage, mtu)", tok)
		}
	}
	return p, nil
}

func parseRate(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "M")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("want a non-negative bit rate like 9600, 64k or 1M")
	}
	return int64(f * float64(mult)), nil
}

func parseLoss(s string) (float64, error) {
	div := 1.0
	if strings.HasSuffix(s, "%") {
		div, s = 100, strings.TrimSuffix(s, "%")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("want a loss fraction like 0.01 or 1%%")
	}
	f /= div
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("loss %v outside 0..1", f)
	}
	return f, nil
}

func parseRange(s string) ([2]time.Duration, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := time.ParseDuration(lo)
	if err != nil {
		return [2]time.Duration{}, err
	}
	b := a
	if isRange {
		if b, err = time.ParseDuration(hi); err != nil {
			return [2]time.Duration{}, err
		}
	}
	if a < 0 || b < a {
		return [2]time.Duration{}, fmt.Errorf("bad range %q: want 0 <= min <= max", s)
	}
	return [2]time.Duration{a, b}, nil
}
