package compress

// Echoed ids and values: an id or a value one direction of the link
// carries that the other direction carried first (a receipt or a marker
// naming a message, an iq result answering a get, a MUC reflecting a
// message) crosses as a reference into the other direction's log instead
// of its bytes. See the package doc ("Echoed ids and values") for the wire
// format and for what the link must keep.

import (
	"fmt"
	"sync"
)

// EchoWindow is how far back in its log of received values an encoder
// echoes (echoWindow): a peer keeps what it sent from that far before our
// acknowledgement on (the link's resumption rule).
const EchoWindow = echoWindow

// Echo log sizes: a log keeps the last echoLogSize ids of each of its last
// two generations; an encoder echoes an id only while it is among the last
// echoWindow ids its log has, so that the peer's log, which may have moved
// on by the ids still in flight toward us, still holds it when the
// reference arrives.
const (
	echoLogSize = 4096
	echoWindow  = 1024
	// echoMinLen: shorter ids (counters such as "1", names such as
	// "disco") cost no more as they are than as a reference.
	echoMinLen = 8
	// Other values (texts, hashes) are logged and echoed from
	// echoValueMin to echoValueMax bytes: a message body a MUC reflects,
	// a status, a form's labels, a photo hash; longer ones are left to
	// zstd. Ids are logged up to echoValueMax bytes too, which bounds an
	// entry.
	echoValueMin = 6
	echoValueMax = 256
	// echoRetainMax bounds a sent log that keeps what the peer has not
	// acknowledged (RetainUnacked): past it, the oldest entries go anyway
	// (an echo of one then fails as corrupt, once, and the peer starts a
	// new epoch), so a log holds at most echoRetainMax × echoValueMax
	// bytes a generation whatever the backlog.
	echoRetainMax = 32768
)

// IDLog is one direction's ids and values in stream order (see the
// package doc, "Echoed ids and values"), numbered from 0 in each
// generation. A generation is one epoch of that direction, named by the
// epoch number the link gives Start.
//
// A gateway keeps two: what it sent (its encoder logs it) and what it
// received (its decoder logs it). Its encoder echoes from the received
// log, and its decoder resolves the peer's echoes from the sent log. A log
// keeps the last echoLogSize entries of its current and previous
// generation; a sent log the link marks with RetainUnacked keeps, besides,
// every entry from echoWindow before the peer's acknowledgement (Acked)
// on, up to echoRetainMax entries: the peer echoes only within echoWindow
// of what it received, so however far ahead of the peer this end runs (a
// backlog draining, a stall), an echo the peer writes after acknowledging
// resolves. It is safe for concurrent use.
type IDLog struct {
	mu       sync.Mutex
	gens     [2]idGen // [0] the current generation, [1] the one before
	unacked  bool     // RetainUnacked
	maxStore int      // the most entries any generation held (tests)
}

type idGen struct {
	epoch uint32
	live  bool
	n     uint64            // entries logged in this generation
	base  uint64            // the number of vals[head]
	head  int               // vals[head:] are kept
	vals  []string          // entry base+i at vals[head+i]
	floor uint64            // RetainUnacked: entries from floor on are kept
	index map[string]uint64 // the latest number of each value kept
}

// NewIDLog returns an empty log whose generation is epoch 0.
func NewIDLog() *IDLog {
	l := &IDLog{}
	l.gens[0] = idGen{live: true, index: make(map[string]uint64)}
	return l
}

// RetainUnacked makes the log keep, besides its last echoLogSize entries,
// every entry from echoWindow before the number Acked last gave on (from
// 0 until then): the log of what this end sent, on a link whose peer
// acknowledges it.
func (l *IDLog) RetainUnacked() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unacked = true
}

// Acked records that the peer received the first n entries of epoch's
// generation: entries before n-echoWindow may go (RetainUnacked).
func (l *IDLog) Acked(epoch uint32, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.gens {
		if g := &l.gens[i]; g.live && g.epoch == epoch && n <= g.n {
			g.floor = max(g.floor, n-min(n, echoWindow))
			l.trim(g)
		}
	}
}

// Start begins a new generation for epoch: the entries logged from now on
// are numbered from 0. The current generation stays readable as the
// previous one (a reference to it may still be in flight).
func (l *IDLog) Start(epoch uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gens[0].n == 0 {
		// Nothing was logged in the current generation (an epoch started
		// again before it carried anything): replace it, and keep the
		// previous one, which a reference in flight may still name.
		l.gens[0].epoch, l.gens[0].live = epoch, true
		return
	}
	old := l.gens[1]
	l.gens[1] = l.gens[0]
	if old.index != nil {
		clear(old.index)
	} else {
		old.index = make(map[string]uint64)
	}
	clear(old.vals)
	l.gens[0] = idGen{epoch: epoch, live: true, index: old.index, vals: old.vals[:0]}
}

// Len returns the number of entries logged in the current generation, and
// its epoch.
func (l *IDLog) Len() (n uint64, epoch uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gens[0].n, l.gens[0].epoch
}

func (l *IDLog) add(v string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := &l.gens[0]
	g.vals = append(g.vals, v)
	g.index[v] = g.n
	g.n++
	l.trim(g)
	l.maxStore = max(l.maxStore, len(g.vals)-g.head)
}

// trim drops the oldest entries beyond the last echoLogSize that the log
// need not keep.
func (l *IDLog) trim(g *idGen) {
	keep := g.n - min(g.n, echoLogSize)
	if l.unacked {
		keep = max(min(keep, g.floor), g.n-min(g.n, echoRetainMax))
	}
	for g.base < keep {
		v := g.vals[g.head]
		if g.index[v] == g.base {
			delete(g.index, v)
		}
		g.vals[g.head] = ""
		g.head++
		g.base++
	}
	if g.head > 1024 && g.head > len(g.vals)/2 {
		n := copy(g.vals, g.vals[g.head:])
		clear(g.vals[n:])
		g.vals, g.head = g.vals[:n], 0
	}
}

// find returns the number of v in the current generation, and that
// generation's epoch, when it is among the last echoWindow entries.
func (l *IDLog) find(v []byte) (idx uint64, epoch uint32, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := &l.gens[0]
	i, ok := g.index[string(v)]
	if !ok || g.n-i > echoWindow {
		return 0, 0, false
	}
	return i, g.epoch, true
}

// get returns entry idx of epoch's generation (current or previous) if the
// log still holds it.
func (l *IDLog) get(epoch uint32, idx uint64) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.gens {
		g := &l.gens[i]
		if !g.live || g.epoch != epoch {
			continue
		}
		if idx >= g.n || idx < g.base {
			return "", fmt.Errorf("echoed entry %d of epoch %#x: the log holds %d..%d", idx, epoch, g.base, g.n)
		}
		return g.vals[g.head+int(idx-g.base)], nil
	}
	return "", fmt.Errorf("echoed entry %d of epoch %#x: no such generation in the log", idx, epoch)
}

// echoState is what one stream's echoes remember (part of tables: it
// starts over with the epoch).
type echoState struct {
	set   bool   // an epoch was named in this stream
	epoch uint32 // ...this one
	last  uint64 // the number of the last id echoed
}

// LogIDs makes the encoder log the ids it writes to l (the ids this
// direction sent). Set it before the first Encode of an epoch.
func (e *Encoder) LogIDs(l *IDLog) { e.st.t.log = l }

// EchoIDs lets the encoder write an id found in l (the ids the other
// direction brought, as this end's decoder logged them) as a reference.
// The peer's decoder must resolve with the log of what it sent
// (Decoder.EchoIDs).
func (e *Encoder) EchoIDs(l *IDLog) { e.st.t.echo = l }

// Echoed returns how many ids and values the encoder has written as
// echoes since it was made (`isthmus bench` reports it).
func (e *Encoder) Echoed() int { return e.st.echoed }

// LogIDs makes the decoder log the ids it reads to l (the ids this
// direction received).
func (d *Decoder) LogIDs(l *IDLog) { d.st.t.log = l }

// EchoIDs makes the decoder resolve echoed ids from l, the log of the ids
// this end's encoder sent.
func (d *Decoder) EchoIDs(l *IDLog) { d.st.t.echo = l }

// pushID enters an id in the recent-id ring, and in the log when it is at
// most echoValueMax bytes (which bounds the log's memory whatever the peer
// sends).
func (t *tables) pushID(v string) {
	t.ids.push(v)
	if t.log != nil && len(v) <= echoValueMax {
		t.log.add(v)
	}
}

// writeEcho writes v (an id or another value of at least minLen bytes) as
// an echo when the other direction's log has it. The caller enters v in
// the ring (an id) or the value table (another value, as a literal would).
func (e *structEncoder) writeEcho(v []byte, minLen int) bool {
	if e.t.echo == nil || len(v) < minLen {
		return false
	}
	idx, epoch, ok := e.t.echo.find(v)
	if !ok {
		return false
	}
	es := &e.t.echoes
	if !es.set || es.epoch != epoch {
		e.uv(formEchoEpoch)
		e.uv(uint64(epoch))
		e.uv(idx)
		es.set, es.epoch = true, epoch
	} else {
		e.uv(formEcho)
		e.uv(zigzag(int64(idx) - int64(es.last) - 1))
	}
	es.last = idx
	e.echoed++
	if !e.echoMinSet || idx < e.echoMin || epoch != e.echoMinEpoch {
		e.echoMin, e.echoMinEpoch, e.echoMinSet = idx, epoch, true
	}
	return true
}

// LastEchoMin returns the lowest entry number the last Encode echoed, and
// its generation's epoch (ok false: it echoed nothing). The link resumes a
// block byte for byte only while the peer's log still holds that entry.
func (e *Encoder) LastEchoMin() (idx uint64, epoch uint32, ok bool) {
	return e.st.echoMin, e.st.echoMinEpoch, e.st.echoMinSet
}

// echoLogged reports whether a value other than an id, of n bytes, that
// crossed as kind k enters the log of its direction: values the other
// direction may echo (a MUC reflecting a message, a status or a form back
// to its sender's side). Both ends apply it to what they wrote and read.
func echoLogged(k valueKind, n int) bool {
	switch k {
	case kindUUID, kindHex, kindB64, kindB64L, kindPacked, kindLiteral, kindEcho:
		return n >= echoValueMin && n <= echoValueMax
	}
	return false
}

// logValue enters a value other than an id in the log.
func (t *tables) logValue(v []byte) {
	if t.log != nil {
		t.log.add(string(v))
	}
}

// readEcho reads the rest of an echo form and appends the id it names.
func (d *structDecoder) readEcho(dst []byte, form uint64) ([]byte, error) {
	if d.t.echo == nil {
		return dst, corrupt("echoed id without a log of sent ids")
	}
	es := &d.t.echoes
	var idx uint64
	if form == formEchoEpoch {
		ep, err := d.uv()
		if err != nil {
			return dst, err
		}
		if ep > 1<<32-1 {
			return dst, corrupt("echo epoch %d", ep)
		}
		if idx, err = d.uv(); err != nil {
			return dst, err
		}
		es.set, es.epoch = true, uint32(ep)
	} else {
		if !es.set {
			return dst, corrupt("echoed id before an epoch was named")
		}
		x, err := d.uv()
		if err != nil {
			return dst, err
		}
		i := int64(es.last) + 1 + unzigzag(x)
		if i < 0 {
			return dst, corrupt("echoed id %d", i)
		}
		idx = uint64(i)
	}
	v, err := d.t.echo.get(es.epoch, idx)
	if err != nil {
		return dst, corrupt("%v", err)
	}
	es.last = idx
	return append(dst, v...), nil
}
