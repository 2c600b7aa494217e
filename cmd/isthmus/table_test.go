package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/demo"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// TestTransportTable runs `isthmus demo --compare` in virtual time (the
// whole deployment in memory, in a testing/synctest bubble) for each
// profile of the transport table in docs/measurements.md and prints the
// tables. A measurement, not a check: it runs with ISTHMUS_MEASURE=1 (make
// transport-table); ISTHMUS_DURATION (default 5m), ISTHMUS_PROFILES and
// ISTHMUS_TRANSPORTS (comma-separated) narrow it. Each run adds an idle hour
// and a 10-minute outage with the plan's traffic going on (demo.Options
// Idle and Outage). It ends with the Markdown table of all runs.
func TestTransportTable(t *testing.T) {
	if os.Getenv("ISTHMUS_MEASURE") == "" {
		t.Skip("a measurement: set ISTHMUS_MEASURE=1 (make transport-table)")
	}
	dur := 5 * time.Minute
	if s := os.Getenv("ISTHMUS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("ISTHMUS_DURATION: %v", err)
		}
		dur = d
	}
	profiles := []string{"vhf-9600", "iridium-2400", "hf-2400", "geo-1m"}
	if s := os.Getenv("ISTHMUS_PROFILES"); s != "" {
		profiles = strings.Split(s, ",")
	}
	transports := compareTransports
	if s := os.Getenv("ISTHMUS_TRANSPORTS"); s != "" {
		transports = strings.Split(s, ",")
	}
	var md bytes.Buffer
	for i, prof := range profiles {
		p, err := emu.ParseProfile(prof)
		if err != nil {
			t.Fatal(err)
		}
		var runs []compareRun
		for _, tr := range transports {
			var res demo.Result
			var rerr error
			start := time.Now()
			synctest.Test(t, func(t *testing.T) {
				res, rerr = demo.Run(context.Background(), demo.Options{Profile: p, Duration: dur, Seed: 1, Transport: tr, Virtual: true,
					Drain: 10 * time.Minute, Idle: time.Hour, Outage: 10 * time.Minute})
			})
			t.Logf("%s %s: %v of virtual traffic in %v", prof, tr, dur, time.Since(start).Round(time.Millisecond))
			runs = append(runs, compareRun{tr, res, rerr})
		}
		var b bytes.Buffer
		printCompare(&b, runs)
		t.Logf("demo --compare, virtual time, profile %s:\n%s", prof, b.String())
		printCompareMarkdown(&md, runs, i == 0)
	}
	t.Logf("transport table (%v of the seed's traffic per run, virtual time):\n%s", dur, md.String())
}
