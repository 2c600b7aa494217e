package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/emu"
)

func init() {
	register("linkemu", "relay TCP or UDP through an emulated slow link", runLinkemu)
}

func runLinkemu(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	dump := make(chan struct{})
	go func() {
		for {
			select {
			case <-usr1:
				select {
				case dump <- struct{}{}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return linkemuDump(ctx, os.Stdout, os.Stderr, args, dump)
}

// linkemu relays until ctx is canceled, logging to stderr; -list prints the
// profile table to stdout.
func linkemu(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	return linkemuDump(ctx, stdout, stderr, args, nil)
}

// linkemuDump is linkemu that also logs the stats line whenever dump
// receives (SIGUSR1 in `isthmus linkemu`).
func linkemuDump(ctx context.Context, stdout, stderr io.Writer, args []string, dump <-chan struct{}) error {
	fs := flag.NewFlagSet("linkemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := fs.String("profile", "", "link `PROFILE`: a name from -list, optionally followed by ,key=value overrides (rate, delay, loss, burst, outage, mtu)")
	listen := fs.String("listen", "", "address to accept on (`HOST:PORT`)")
	target := fs.String("target", "", "address to forward to (`HOST:PORT`)")
	udp := fs.Bool("udp", false, "relay UDP datagrams instead of TCP connections")
	seed := fs.Int64("seed", 1, "seed for losses and outages")
	mode := fs.String("outage", "reset", "what an outage does to TCP connections: reset or stall")
	every := fs.Duration("stats-interval", 10*time.Second, "log the counters this often (0: only on SIGUSR1 and at exit)")
	list := fs.Bool("list", false, "print the built-in profiles and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: isthmus linkemu -profile NAME[,overrides] -listen HOST:PORT -target HOST:PORT [-udp] [-seed N] [-outage reset|stall] [-stats-interval 10s]")
		fmt.Fprintln(stderr, "       (kill -USR1 PID logs the counters at once)")
		fmt.Fprintln(stderr, "       isthmus linkemu -list")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		fmt.Fprintf(stderr, "linkemu: "+format+"\n", args...)
		fs.Usage()
		return errUsage
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if *list {
		return printProfiles(stdout)
	}
	if *spec == "" || *listen == "" || *target == "" {
		return bad("-profile, -listen and -target are required")
	}
	if *every < 0 {
		return bad("-stats-interval must not be negative, not %v", *every)
	}
	p, err := emu.ParseProfile(*spec)
	if err != nil {
		return bad("%v", err)
	}
	var om emu.OutageMode
	switch *mode {
	case "reset":
		om = emu.Reset
	case "stall":
		om = emu.Stall
	default:
		return bad("-outage must be reset or stall, not %q", *mode)
	}
	logger := log.New(stderr, "linkemu: ", log.LstdFlags)
	r := &emu.Relay{Profile: p, Seed: *seed, Mode: om, Logf: logger.Printf}
	proto := "tcp"
	if *udp {
		proto = "udp"
	}
	var (
		pc net.PacketConn
		ln net.Listener
	)
	if *udp {
		if pc, err = net.ListenPacket("udp", *listen); err != nil {
			return fmt.Errorf("linkemu: %w", err)
		}
	} else if ln, err = net.Listen("tcp", *listen); err != nil {
		return fmt.Errorf("linkemu: %w", err)
	}
	logger.Printf("relaying %s %s -> %s over %s", proto, *listen, *target, p)
	start := time.Now()
	report := func() {
		logger.Printf("stats after %v: %s", time.Since(start).Round(time.Second), formatStats(r.Stats()))
	}
	served := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		var tick <-chan time.Time
		if *every > 0 {
			t := time.NewTicker(*every)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-tick:
				report()
			case <-dump:
				report()
			case <-served:
				return
			}
		}
	}()
	if *udp {
		err = r.ServeUDP(ctx, pc, *target)
	} else {
		err = r.ServeTCP(ctx, ln, *target)
	}
	close(served)
	<-reported
	report()
	return err
}

func formatStats(st emu.Stats) string {
	dir := func(name string, d emu.DirStats) string {
		return fmt.Sprintf("%s offered %d B/%d, delivered %d B/%d, retransmitted %d B, lost %d B/%d, dropped %d B/%d",
			name, d.OfferedBytes, d.OfferedUnits, d.DeliveredBytes, d.DeliveredUnits,
			d.RetransmittedBytes, d.LostBytes, d.LostUnits, d.DroppedBytes, d.DroppedUnits)
	}
	return fmt.Sprintf("%s; %s; outages %d", dir("client->target", st.AB), dir("target->client", st.BA), st.Outages)
}

func printProfiles(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRATE\tDELAY\tLOSS\tOUTAGES\tSOURCE")
	for _, name := range emu.Names() {
		p, _ := emu.Lookup(name)
		rate := "unlimited"
		switch {
		case p.RateBPS >= 1_000_000 && p.RateBPS%1_000_000 == 0:
			rate = fmt.Sprintf("%d Mbit/s", p.RateBPS/1_000_000)
		case p.RateBPS >= 1000 && p.RateBPS%1000 == 0 && p.RateBPS >= 10_000:
			rate = fmt.Sprintf("%d kbit/s", p.RateBPS/1000)
		case p.RateBPS > 0:
			rate = fmt.Sprintf("%d bit/s", p.RateBPS)
		}
		loss := fmt.Sprintf("%g%%", p.Loss*100)
		if p.BurstLen > 1 {
			loss += fmt.Sprintf(" (bursts of %d)", p.BurstLen)
		}
		out := "none"
		if p.OutageEvery[1] > 0 {
			out = fmt.Sprintf("every %v-%v for %v-%v", p.OutageEvery[0], p.OutageEvery[1], p.OutageLen[0], p.OutageLen[1])
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", name, rate, p.Delay, loss, out, p.Source)
	}
	return tw.Flush()
}
