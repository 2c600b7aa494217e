package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/internal/atomicfile"
	"github.com/isthmus-xmpp/isthmus/link"
	"github.com/isthmus-xmpp/isthmus/presence"
)

// saveEvery is the shortest interval between two writes of the mirror's
// state file.
const saveEvery = 5 * time.Second

// linkPoll is how often the mirror's loop looks at the link state.
const linkPoll = time.Second

// mirrorEdge connects the presence mirror (package presence) to the
// gateway: S2S stanzas and link stanzas in, one timer loop, the state file.
type mirrorEdge struct {
	g    *Gateway
	path string        // state file; "" = not persisted
	kick chan struct{} // wakes run when the mirror's next deadline may have moved
	// write stores the state file (writeFileAtomic; tests replace it). It
	// runs without mu: the S2S read path takes mu for every presence, and
	// must not wait for a disk flush.
	write func(path string, data []byte) error

	mu sync.Mutex // guards m, and keeps the mirror's actions in order
	m  *presence.Mirror

	lastSave time.Time // run's goroutine only
}

// newMirrorEdge returns nil when the mirror is disabled.
func newMirrorEdge(g *Gateway) (*mirrorEdge, error) {
	pc := g.cfg.Presence
	if !pc.Enable {
		return nil, nil
	}
	local := make([]string, 0, len(g.local))
	for d := range g.local {
		local = append(local, d)
	}
	slices.Sort(local)
	remote := make([]string, 0, len(g.remote))
	for d := range g.remote {
		remote = append(remote, d)
	}
	slices.Sort(remote)
	m, err := presence.New(presence.Config{
		Self:       local[0],
		Peer:       remote[0],
		Window:     pc.FanoutWindow.Duration,
		Refresh:    pc.RefreshInterval.Duration,
		Reprobe:    pc.ReprobeInterval.Duration,
		Timeout:    pc.Timeout.Duration,
		MaxEntries: pc.MaxEntries,
		MaxBytes:   pc.MaxBytes,
	}, time.Now())
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	e := &mirrorEdge{g: g, m: m, kick: make(chan struct{}, 1), write: writeFileAtomic}
	if pc.StateFile != "" {
		e.path = filepath.Join(g.cfg.StateDir, pc.StateFile)
		data, err := os.ReadFile(e.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("gateway: presence state: %w", err)
		default:
			st, err := presence.UnmarshalState(data)
			if err == nil {
				err = m.Restore(st)
			}
			if err != nil {
				// A damaged state file costs a resync, not the gateway.
				g.log.Warn("gateway: presence state unreadable, starting empty", "file", e.path, "err", err)
			} else {
				out, in := m.Entries()
				g.log.Info("gateway: presence mirror restored", "file", e.path, "out", out, "in", in)
			}
		}
	}
	return e, nil
}

func toPresence(st s2s.Stanza) presence.Stanza {
	return presence.Stanza{Name: st.Name, From: st.From, To: st.To, Type: st.Type, ID: st.ID, Raw: st.Raw}
}

// perform sends the mirror's actions; called with mu held, so that actions
// leave in the order the mirror produced them. Nothing here waits: a
// stanza the link refuses is returned to be bounced to its local sender
// after mu is released (bounce), because a bounce waits for room on that
// server's stream (s2s.Pool.Reply), and waiting under mu would stall every
// other server's presence and iqs behind one flooding server.
func (e *mirrorEdge) perform() (refused []refusedStanza) {
	for _, a := range e.m.Actions() {
		st := s2s.Stanza{Name: a.Stanza.Name, From: a.Stanza.From, To: a.Stanza.To, Type: a.Stanza.Type, ID: a.Stanza.ID, Raw: a.Stanza.Raw}
		switch {
		case a.Dest == presence.ToLink && a.Mirror:
			// Mirror stanzas change a recipient set (add, del, keep) or
			// compare tables (sync): a newer one does not make a queued
			// older one obsolete, and a sync iq must not overtake the
			// mirror presence queued before it. So all of them go in the
			// presence class, in order, without a coalescing key. The
			// mirror has already dropped duplicates and merged fan-outs.
			it := linkItem(st)
			it.Class, it.Coalesce = link.ClassPresence, ""
			e.g.toLinkItem(st, it)
		case a.Dest == presence.ToLink:
			if err := e.g.sendLink(st, linkItem(st)); err != nil {
				refused = append(refused, refusedStanza{st, linkReason(err)})
			}
		default:
			e.g.toLocal(st)
		}
	}
	return refused
}

// refusedStanza is a stanza from a local sender the link refused, with why.
type refusedStanza struct {
	st s2s.Stanza
	r  dropReason
}

// bounce returns what perform could not send to its senders; called
// without mu.
func (e *mirrorEdge) bounce(refused []refusedStanza) {
	for _, f := range refused {
		e.g.bounceToLocal(f.st, f.r)
	}
}

func (e *mirrorEdge) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// fromLocal sees each presence and iq a local server sends to a remote
// domain; true means the mirror handled it (the gateway sends nothing itself).
func (e *mirrorEdge) fromLocal(st s2s.Stanza) bool {
	e.mu.Lock()
	handled := e.m.FromLocal(time.Now(), toPresence(st))
	refused := e.perform()
	e.mu.Unlock()
	e.bounce(refused)
	e.wake()
	return handled
}

// flushFrom sends the fan-outs being collected for the sender of st at
// once, ahead of st (see presence.Mirror.FlushFrom).
func (e *mirrorEdge) flushFrom(st s2s.Stanza) {
	e.mu.Lock()
	e.m.FlushFrom(time.Now(), st.From)
	refused := e.perform()
	e.mu.Unlock()
	e.bounce(refused)
}

// fromLink sees each presence and iq from the peer for a local domain; true
// means the mirror consumed it.
func (e *mirrorEdge) fromLink(st s2s.Stanza) bool {
	e.mu.Lock()
	handled := e.m.FromPeer(time.Now(), toPresence(st))
	refused := e.perform()
	e.mu.Unlock()
	e.bounce(refused)
	e.wake()
	return handled
}

// run drives the mirror's timers and tells it the link state until ctx
// ends; then it flushes the fan-outs being collected and saves the state.
// The state is taken under mu and written after mu is released.
func (e *mirrorEdge) run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		e.mu.Lock()
		now := time.Now()
		e.m.SetLink(now, e.g.link.Stats().Up)
		if !now.Before(e.m.Next()) {
			e.m.Tick(now)
		}
		refused := e.perform()
		wait := min(e.m.Next().Sub(now), linkPoll)
		var snap *presence.State
		if e.path != "" && e.m.Dirty() && now.Sub(e.lastSave) >= saveEvery {
			s := e.m.State()
			snap = &s
		}
		e.mu.Unlock()
		e.bounce(refused)
		if snap != nil {
			e.lastSave = now
			e.save(*snap)
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			e.mu.Lock()
			e.m.FlushAll()
			refused := e.perform()
			var s presence.State
			if e.path != "" {
				s = e.m.State()
			}
			e.mu.Unlock()
			e.bounce(refused)
			if e.path != "" {
				e.save(s)
			}
			return nil
		case <-t.C:
		case <-e.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

// save encodes s and writes the state file atomically (temporary file,
// then rename); called without mu. Errors are logged and counted: the
// mirror works without it.
func (e *mirrorEdge) save(s presence.State) {
	data, err := presence.MarshalState(s)
	if err == nil {
		err = e.write(e.path, data)
	}
	if err != nil {
		e.g.c.drop(dropStateWrite)
		e.g.log.Warn("gateway: presence state not saved", "file", e.path, "err", err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// PresenceCounters returns the presence mirror's counters and its table
// sizes (this side's contacts, the other side's); ok is false when the
// mirror is disabled.
func (g *Gateway) PresenceCounters() (c presence.Counters, out, in int, ok bool) {
	if g.mirror == nil {
		return presence.Counters{}, 0, 0, false
	}
	g.mirror.mu.Lock()
	defer g.mirror.mu.Unlock()
	out, in = g.mirror.m.Entries()
	return g.mirror.m.Counters(), out, in, true
}
