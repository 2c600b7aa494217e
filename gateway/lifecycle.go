package gateway

import (
	"context"
	"encoding"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// Drain prepares a clean stop (SIGTERM): it stops accepting new S2S
// connections (open streams keep working), then waits until the link has
// carried everything queued and the peer acknowledged it, or ctx ends, or
// at once when the link is down (nothing could leave; the spool keeps it,
// and a restart is not held up while new S2S connections wait for the
// next process in a socket-activated listener's queue). It returns the
// stanzas still queued or unacknowledged. The caller then ends Run's
// context: the link stops, the S2S streams are flushed and closed cleanly.
func (g *Gateway) Drain(ctx context.Context) int {
	g.ops.stopAccepting()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ls := g.link.Stats()
		if q := ls.Waiting + ls.Unacked; q == 0 || !ls.Up || ctx.Err() != nil {
			return q
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func (o *ops) stopAccepting() {
	o.mu.Lock()
	o.draining = true
	gate := o.gate
	o.mu.Unlock()
	if gate != nil {
		gate.stop()
	}
}

// Reloaded reports what Reload did, by configuration key.
type Reloaded struct {
	Applied     []string // changed and now in effect
	NeedRestart []string // changed but only a restart applies them
}

// reloadable are the keys Reload applies to a running gateway. log_level is
// listed because the logger belongs to the caller: `isthmus run` sets its
// level when Reload reports it applied.
var reloadable = []string{"log_level", "summary_interval", "link.rate_bps"}

// Reload compares cfg (a validated configuration of the same gateway,
// e.g. the file read again on SIGHUP) with the one in effect and applies
// the settings that are safe to change while running: summary_interval and
// link.rate_bps (and log_level, see reloadable). Other changed keys are
// reported in NeedRestart and not applied.
func (g *Gateway) Reload(cfg *config.Config) Reloaded {
	o := g.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil {
		o.cur = g.cfg
	}
	var r Reloaded
	for _, k := range diffKeys("", reflect.ValueOf(*o.cur), reflect.ValueOf(*cfg)) {
		if slices.Contains(reloadable, k) {
			r.Applied = append(r.Applied, k)
		} else {
			r.NeedRestart = append(r.NeedRestart, k)
		}
	}
	next := *o.cur
	next.LogLevel, next.SummaryInterval, next.Link.RateBPS = cfg.LogLevel, cfg.SummaryInterval, cfg.Link.RateBPS
	o.cur = &next
	o.summaryEvery.Store(int64(cfg.SummaryInterval.Duration))
	g.link.SetRate(cfg.Link.RateBPS)
	select {
	case o.reloaded <- struct{}{}:
	default:
	}
	if len(r.Applied) > 0 || len(r.NeedRestart) > 0 {
		g.log.Info("gateway: configuration reloaded", "applied", r.Applied, "need_restart", r.NeedRestart)
	}
	return r
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

// diffKeys returns the TOML keys whose values differ between two values of
// the same struct type, descending into tables.
func diffKeys(prefix string, a, b reflect.Value) []string {
	var out []string
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		fa, fb := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && !f.Type.Implements(textMarshaler) {
			out = append(out, diffKeys(key+".", fa, fb)...)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			out = append(out, key)
		}
	}
	return out
}
