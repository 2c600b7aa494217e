package spool

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link"
	"github.com/isthmus-xmpp/isthmus/link/item"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ids(start uint32) func() uint32 {
	n := start
	return func() uint32 { n++; return n }
}

// side is one gateway's session with its spool, restartable.
type side struct {
	t    *testing.T
	dir  string
	sp   *Spool
	s    *link.Session
	seed uint32
}

func newSide(t *testing.T, seed uint32) *side {
	d := &side{t: t, dir: t.TempDir(), seed: seed}
	d.restart()
	return d
}

// restart drops all memory state and resumes from the spool, as after kill -9.
func (d *side) restart() {
	if d.sp != nil {
		d.sp.f.Close() // no Sync: a killed process does not get to fsync
	}
	sp, err := Open(d.dir, SyncNone)
	if err != nil {
		d.t.Fatal(err)
	}
	s, err := link.NewSession(link.SessionConfig{BatchWindow: time.Millisecond}, ids(d.seed))
	if err != nil {
		d.t.Fatal(err)
	}
	d.seed += 1000
	s.Restore(sp.Restored(), t0)
	d.sp, d.s = sp, s
}

func (d *side) send(now time.Time, data string, cls item.Class, key string) {
	it := item.Item{Data: []byte(data), Class: cls, Coalesce: key}
	id, err := d.sp.Add(it)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.s.Enqueue(now, id, it); err != nil {
		d.t.Fatal(err)
	}
	d.flush()
}

func (d *side) flush() {
	if err := d.sp.Apply(d.s.TakeOps()); err != nil {
		d.t.Fatal(err)
	}
}

func (d *side) poll(now time.Time) []byte {
	b := d.s.Poll(now)
	d.flush()
	return b
}

func (d *side) recv(now time.Time, buf []byte) []string {
	var got []string
	br := bufio.NewReader(bytes.NewReader(buf))
	for {
		f, err := link.ReadFrame(br)
		if err != nil {
			return got
		}
		batch, err := d.s.Receive(now, f)
		d.flush()
		if err != nil {
			d.t.Fatalf("receive: %v", err)
		}
		for _, st := range batch {
			got = append(got, string(st))
		}
	}
}

// exchange runs both until quiet; it returns what b received.
func exchange(now time.Time, a, b *side) (toB, toA []string) {
	for range 1000 {
		fa, fb := a.poll(now), b.poll(now)
		if fa == nil && fb == nil {
			return
		}
		toB = append(toB, b.recv(now, fa)...)
		toA = append(toA, a.recv(now, fb)...)
	}
	panic("never quiet")
}

func connect(now time.Time, a, b *side) {
	a.s.Disconnected()
	b.s.Disconnected()
	a.s.Connected(now)
	b.s.Connected(now)
}

func msg(i int) string { return fmt.Sprintf("<message id='m%d'/>", i) }

// TestKillAndRestartEitherSide kills the sender and then the receiver at
// awkward moments; every stanza arrives exactly once, in order.
func TestKillAndRestartEitherSide(t *testing.T) {
	a, b := newSide(t, 100), newSide(t, 200)
	now := t0
	connect(now, a, b)
	var got []string
	step := func() {
		now = now.Add(10 * time.Millisecond)
		toB, _ := exchange(now, a, b)
		got = append(got, toB...)
	}
	step()
	n := 0
	sendN := func(k int) {
		for range k {
			a.send(now, msg(n), item.ClassMessage, "")
			n++
		}
	}
	sendN(5)
	step() // delivered, ack owed by b (not yet sent)
	sendN(3)
	// a frames these but the connection dies before b sees them.
	now = now.Add(10 * time.Millisecond)
	a.poll(now)
	// kill -9 a; b keeps running.
	a.restart()
	connect(now, a, b)
	step()
	if a.s.EpochChanges != 1 {
		t.Fatalf("restarted sender did not start a new epoch: %d", a.s.EpochChanges)
	}
	sendN(4)
	step() // b has it, the ack is still owed
	// kill -9 b: it restores h but not its decoder.
	b.restart()
	sendN(2)
	connect(now, a, b)
	step()
	now = now.Add(2 * time.Second)
	step() // acks flow
	if len(got) != n {
		t.Fatalf("received %d, want %d: %q", len(got), n, got)
	}
	for i, g := range got {
		if g != msg(i) {
			t.Fatalf("stanza %d = %s, want %s (%q)", i, g, msg(i), got)
		}
	}
	if items, _ := a.sp.Len(); items != 0 {
		t.Errorf("%d items left in the spool after every ack", items)
	}
}

func TestPresenceCoalescedAndPriority(t *testing.T) {
	a, b := newSide(t, 100), newSide(t, 200)
	now := t0
	connect(now, a, b)
	exchange(now, a, b)
	a.send(now, "<presence from='x' n='1'/>", item.ClassPresence, "x|y")
	a.send(now, "<message id='1'/>", item.ClassMessage, "")
	a.send(now, "<presence from='x' n='2'/>", item.ClassPresence, "x|y")
	a.send(now, "<iq id='2'/>", item.ClassIQ, "")
	if a.s.Drops.Coalesced != 1 {
		t.Fatalf("coalesced = %d", a.s.Drops.Coalesced)
	}
	// Restart before sending: the spool keeps only the newest presence.
	a.restart()
	connect(now, a, b)
	got, _ := exchange(now.Add(time.Second), a, b)
	want := []string{"<message id='1'/>", "<iq id='2'/>", "<presence from='x' n='2'/>"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTornTailIgnored(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(dir, SyncAlways)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		sp.Add(item.Item{Data: []byte(msg(i))})
	}
	sp.Close()
	path := filepath.Join(dir, fileName)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-3], 0o600) // the last record torn
	sp, err = Open(dir, SyncBatch)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := sp.Len(); n != 2 {
		t.Fatalf("%d items after a torn tail, want 2", n)
	}
	if id, _ := sp.Add(item.Item{Data: []byte("x")}); id != 3 {
		t.Fatalf("next id %d, want 3", id)
	}
	sp.Close()
	sp, _ = Open(dir, SyncBatch)
	if n, _ := sp.Len(); n != 3 {
		t.Fatalf("%d items after reopening, want 3", n)
	}
	sp.Close()
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(dir, SyncNone)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 4096)
	var seq uint32
	for i := range 3000 {
		id, _ := sp.Add(item.Item{Data: big})
		seq++
		sp.Apply([]item.Op{{Kind: item.OpFrame, Epoch: 7, N: seq, IDs: []uint64{id}}})
		if i%10 != 9 {
			sp.Apply([]item.Op{{Kind: item.OpAck, Epoch: 7, N: seq}})
		}
	}
	if sp.Compactions == 0 {
		t.Fatal("never compacted")
	}
	st, _ := os.Stat(filepath.Join(dir, fileName))
	if st.Size() > 8<<20 {
		t.Fatalf("journal is %d bytes after compaction", st.Size())
	}
	sp.Close()
	sp, _ = Open(dir, SyncNone)
	r := sp.Restored()
	if r.Epoch != 7 || r.Acked != seq-1 || len(r.Frames) != 1 || len(r.Items) != 1 {
		t.Fatalf("restored epoch %d acked %d frames %d items %d", r.Epoch, r.Acked, len(r.Frames), len(r.Items))
	}
	sp.Close()
}

// TestRestartKeepsPairOrder: a presence queued before a high-class stanza of
// the same pair still goes first after a restart (the pair is in the spool),
// while another pair's message keeps its priority.
func TestRestartKeepsPairOrder(t *testing.T) {
	a, b := newSide(t, 100), newSide(t, 200)
	now := t0
	connect(now, a, b)
	exchange(now, a, b)
	send := func(data string, cls item.Class, key, pair string) {
		it := item.Item{Data: []byte(data), Class: cls, Coalesce: key, Pair: pair}
		id, err := a.sp.Add(it)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.s.Enqueue(now, id, it); err != nil {
			t.Fatal(err)
		}
		a.flush()
	}
	send("<presence n='o'/>", item.ClassPresence, "c/r|d", "c|d")
	send("<presence type='unavailable' n='u'/>", item.ClassPresence, "bob|alice", "bob|alice")
	send("<presence type='subscribed' n='s'/>", item.ClassMessage, "", "bob|alice")
	send("<presence n='p'/>", item.ClassPresence, "bob/r|alice", "bob|alice")
	send("<message n='m'/>", item.ClassMessage, "", "e|f")
	want := []string{"<presence type='unavailable' n='u'/>", "<presence type='subscribed' n='s'/>", "<message n='m'/>",
		"<presence n='o'/>", "<presence n='p'/>"}
	if err := a.sp.compact(); err != nil { // the pair survives compaction too
		t.Fatal(err)
	}
	a.restart()
	connect(now, a, b)
	got, _ := exchange(now.Add(time.Second), a, b)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
