package gateway

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// ops is the operator side of a gateway: S2S stream gauges, the history of
// per-second samples behind the status page, the metrics registry, the gate
// that stops accepting S2S connections on shutdown, and the settings a
// reload can change. Files: ops.go, metrics.go, status.go, lifecycle.go.
type ops struct {
	g       *Gateway
	hist    *history
	metrics *metricsHandler
	started time.Time

	summaryEvery atomic.Int64 // summary log interval (ns); 0 = off; reloadable
	reloaded     chan struct{}

	mu       sync.Mutex     // guards the following fields
	gate     *gateListener  // the S2S listener, once Run wrapped it
	draining bool           // stopAccepting was called
	cur      *config.Config // the configuration in effect after reloads (nil: g.cfg)
	inConns  int            // inbound S2S connections open
	inPairs  int            // domain pairs authenticated on open inbound streams
	out      map[[2]string]*outStream
}

// outStream is the state of outgoing streams for one (local, remote) pair,
// as the pool's events tell it.
type outStream struct {
	connecting, established, failing int
}

func newOps(g *Gateway) *ops {
	o := &ops{
		g:        g,
		hist:     newHistory(historySize),
		out:      map[[2]string]*outStream{},
		reloaded: make(chan struct{}, 1),
		started:  time.Now(),
	}
	o.summaryEvery.Store(int64(g.cfg.SummaryInterval.Duration))
	o.metrics = newMetricsHandler(g)
	return o
}

// event follows the S2S edge's events to keep the stream gauges.
//
// Outgoing: out-open (connected, dialback running), then out-auth
// (established) or out-fail, and out-close at the very end (also after
// out-fail, which may come before out-open when the dial fails). Incoming:
// in-auth per domain pair verified; in-close reports how many pairs the
// closing stream had verified.
func (o *ops) event(e s2s.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := [2]string{e.Local, e.Remote}
	st := o.out[k]
	switch e.Kind {
	case s2s.EventOutOpen, s2s.EventOutAuth, s2s.EventOutFail, s2s.EventOutClose:
		if st == nil {
			st = &outStream{}
			o.out[k] = st
		}
	}
	switch e.Kind {
	case s2s.EventOutOpen:
		st.connecting++
	case s2s.EventOutAuth:
		st.connecting = max(0, st.connecting-1)
		st.established++
	case s2s.EventOutFail:
		st.connecting = max(0, st.connecting-1)
		st.failing++
	case s2s.EventOutClose:
		if st.failing > 0 {
			st.failing--
		} else {
			st.established = max(0, st.established-1)
		}
		if *st == (outStream{}) {
			delete(o.out, k)
		}
	case s2s.EventInAuth:
		o.inPairs++
	case s2s.EventInClose:
		o.inPairs = max(0, o.inPairs-e.Bytes)
	}
}

// Streams counts S2S connections by direction and state.
type Streams struct {
	InConnections int `json:"in_connections"`  // TCP connections from local servers
	InVerified    int `json:"in_verified"`     // domain pairs verified on them by dialback
	OutConnecting int `json:"out_connecting"`  // outgoing streams in dialback
	OutEstablish  int `json:"out_established"` // outgoing streams ready for stanzas
}

func (o *ops) streams() Streams {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := Streams{InConnections: o.inConns, InVerified: o.inPairs}
	for _, st := range o.out {
		s.OutConnecting += st.connecting
		s.OutEstablish += st.established
	}
	return s
}

// listener wraps the S2S listener: it counts open connections and, after
// stopAccepting, closes the real listener while Accept waits for Close, so
// the S2S server keeps serving its open streams.
func (o *ops) listener(l net.Listener) net.Listener {
	gate := &gateListener{Listener: l, o: o, closed: make(chan struct{})}
	o.mu.Lock()
	o.gate = gate
	draining := o.draining
	o.mu.Unlock()
	if draining {
		gate.stop()
	}
	return gate
}

type gateListener struct {
	net.Listener
	o         *ops
	stopped   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

func (l *gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		if l.stopped.Load() {
			<-l.closed
			return nil, net.ErrClosed
		}
		return nil, err
	}
	l.o.mu.Lock()
	l.o.inConns++
	l.o.mu.Unlock()
	return &countedConn{Conn: c, o: l.o}, nil
}

func (l *gateListener) stop() {
	l.stopped.Store(true)
	l.Listener.Close()
}

func (l *gateListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

type countedConn struct {
	net.Conn
	o    *ops
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.o.mu.Lock()
		c.o.inConns--
		c.o.mu.Unlock()
	})
	return c.Conn.Close()
}

// run samples the history every second and logs the summary line at the
// (reloadable) summary interval, until ctx ends.
func (o *ops) run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastSummary := time.Now()
	o.hist.add(o.sample(time.Now()))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.reloaded:
		case now := <-tick.C:
			o.hist.add(o.sample(now))
			if iv := time.Duration(o.summaryEvery.Load()); iv > 0 && now.Sub(lastSummary) >= iv {
				lastSummary = now
				o.g.logSummary()
			}
		}
	}
}
