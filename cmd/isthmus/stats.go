package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
)

func init() {
	register("stats", "show a running gateway's byte counts (from its admin address)", runStats)
}

func runStats(args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the raw JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: isthmus stats [-json] ADMIN_HOST:PORT")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "http://" + fs.Arg(0) + "/stats"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if *asJSON {
		_, err := os.Stdout.Write(body)
		return err
	}
	var s gateway.Snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("%s: not a gateway's stats: %w", url, err)
	}
	printSnapshot(os.Stdout, s)
	return nil
}

func printSnapshot(w io.Writer, s gateway.Snapshot) {
	fmt.Fprintf(w, "gateway %s: link up=%v connects=%d resumes=%d epoch_changes=%d queued=%d unacked=%d\n\n",
		s.Name, s.Link.Up, s.Link.Connects, s.Link.Resumes, s.Link.EpochChanges, s.Link.Waiting, s.Link.Unacked)
	gateway.WriteTable(w, []string{"out (to peer)", "in (from peer)"}, []gateway.Direction{s.Out, s.In})
	fmt.Fprintf(w, "\naccepted from local servers %d, delivered to them %d\n", s.AcceptedTotal(), s.DeliveredTotal())
	for _, m := range []struct {
		title string
		v     map[string]uint64
	}{{"bounced to the sender, by reason:", s.Bounces}, {"dropped (no error reply possible), by reason:", s.Drops}} {
		if len(m.v) == 0 {
			continue
		}
		fmt.Fprintln(w, "\n"+m.title)
		keys := make([]string, 0, len(m.v))
		for k := range m.v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-32s %d\n", k, m.v[k])
		}
	}
}
