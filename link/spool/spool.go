package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/item"
)

// SyncPolicy says when the journal is fsynced.
type SyncPolicy int

// Sync policies; see the package doc.
const (
	SyncBatch SyncPolicy = iota
	SyncAlways
	SyncNone
)

// ParseSyncPolicy parses "batch", "always" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "batch", "":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("spool: %q is not a sync policy (batch, always, none)", s)
}

const (
	header     = "ISTHSPL1"
	fileName   = "spool.log"
	minCompact = 4 << 20
)

// ErrCorrupt is wrapped by errors about a journal that cannot be read.
var ErrCorrupt = errors.New("spool: corrupt journal")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Spool is the journal of one gateway. Sync may run concurrently with the
// other methods; those must not run concurrently with each other (the link
// driver calls them under its lock).
type Spool struct {
	dir    string
	policy SyncPolicy
	fmu    sync.RWMutex // guards f: held shared to use it, exclusively by compact to replace it
	f      *os.File
	dirty  atomic.Bool // written since the last fsync
	size   int64       // bytes in the file
	buf    []byte

	// live state, mirrored for compaction and Restored
	items     map[uint64]item.Stored
	live      int64 // item data bytes
	epoch     uint32
	acked     uint32
	frames    map[uint32][]uint64 // seq -> ids, of epoch
	peerEpoch uint32
	h         uint32
	nextID    uint64

	syncs       atomic.Uint64
	Compactions uint64
}

// Syncs returns how many fsyncs the spool did.
func (s *Spool) Syncs() uint64 { return s.syncs.Load() }

// Open opens (or creates) the spool in dir and replays it.
func Open(dir string, policy SyncPolicy) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, policy: policy, items: map[uint64]item.Stored{}, frames: map[uint32][]uint64{}, nextID: 1}
	path := filepath.Join(dir, fileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	good, err := s.replay(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if good == 0 {
		if _, err := f.WriteAt([]byte(header), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("spool: %w", err)
		}
		good = int64(len(header))
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.f, s.size = f, good
	return s, nil
}

// replay reads the journal and returns the length of its valid prefix.
func (s *Spool) replay(f *os.File) (int64, error) {
	r := bufio.NewReaderSize(f, 1<<16)
	h := make([]byte, len(header))
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, nil // empty (or torn before the header was complete): start afresh
	}
	if string(h) != header {
		return 0, fmt.Errorf("%w: %s does not start with %q", ErrCorrupt, filepath.Join(s.dir, fileName), header)
	}
	good := int64(len(header))
	for {
		kind, err := r.ReadByte()
		if err != nil {
			return good, nil
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > 64<<20 {
			return good, nil
		}
		p := make([]byte, n+4)
		if _, err := io.ReadFull(r, p); err != nil {
			return good, nil
		}
		body, sum := p[:n], binary.BigEndian.Uint32(p[n:])
		c := crc32.Update(crc32.Checksum([]byte{kind}, crcTable), crcTable, body)
		if c != sum {
			return good, nil
		}
		if err := s.apply(kind, body); err != nil {
			return 0, fmt.Errorf("%w: record at %d: %v", ErrCorrupt, good, err)
		}
		good += 1 + int64(uvarintLen(n)) + int64(n) + 4
	}
}

func uvarintLen(n uint64) int { return len(binary.AppendUvarint(nil, n)) }

func readUvarints(p []byte) ([]uint64, error) {
	var out []uint64
	for len(p) > 0 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, errors.New("bad uvarint")
		}
		out = append(out, v)
		p = p[n:]
	}
	return out, nil
}

// apply updates the live state from one record.
func (s *Spool) apply(kind byte, p []byte) error {
	switch kind {
	case 'I', 'J':
		it, err := parseItem(p, kind == 'J')
		if err != nil {
			return err
		}
		s.putItem(it)
	case 'F':
		v, err := readUvarints(p)
		if err != nil || len(v) < 2 {
			return errors.New("bad frame")
		}
		s.frame(uint32(v[0]), uint32(v[1]), v[2:])
	case 'A':
		v, err := readUvarints(p)
		if err != nil || len(v) != 2 {
			return errors.New("bad ack")
		}
		s.ack(uint32(v[0]), uint32(v[1]))
	case 'D':
		v, err := readUvarints(p)
		if err != nil {
			return errors.New("bad drop")
		}
		s.drop(v)
	case 'R':
		v, err := readUvarints(p)
		if err != nil || len(v) != 2 {
			return errors.New("bad recv")
		}
		s.peerEpoch, s.h = uint32(v[0]), uint32(v[1])
	default:
		return fmt.Errorf("unknown record kind %q", kind)
	}
	return nil
}

// appendItem appends the payload of a 'J' record.
func appendItem(p []byte, it item.Stored) []byte {
	p = binary.AppendUvarint(p, it.ID)
	p = append(p, byte(it.Class))
	var exp int64
	if !it.Expires.IsZero() {
		exp = it.Expires.UnixNano()
	}
	p = binary.AppendVarint(p, exp)
	p = binary.AppendUvarint(p, uint64(len(it.Coalesce)))
	p = append(p, it.Coalesce...)
	p = binary.AppendUvarint(p, uint64(len(it.Pair)))
	p = append(p, it.Pair...)
	return append(p, it.Data...)
}

// parseItem reads the payload of an 'I' record, or of a 'J' record (which
// adds the pair).
func parseItem(p []byte, withPair bool) (item.Stored, error) {
	var it item.Stored
	id, n := binary.Uvarint(p)
	if n <= 0 || len(p) < n+1 {
		return it, errors.New("bad item")
	}
	p = p[n:]
	it.ID, it.Class = id, item.Class(p[0])
	p = p[1:]
	exp, n := binary.Varint(p)
	if n <= 0 {
		return it, errors.New("bad item expiry")
	}
	p = p[n:]
	if exp != 0 {
		it.Expires = time.Unix(0, exp)
	}
	str := func(what string) (string, error) {
		l, n := binary.Uvarint(p)
		if n <= 0 || uint64(len(p)-n) < l {
			return "", fmt.Errorf("bad item %s", what)
		}
		v := string(p[n : n+int(l)])
		p = p[n+int(l):]
		return v, nil
	}
	var err error
	if it.Coalesce, err = str("key"); err != nil {
		return it, err
	}
	if withPair {
		if it.Pair, err = str("pair"); err != nil {
			return it, err
		}
	}
	it.Data = bytes.Clone(p)
	return it, nil
}

func (s *Spool) putItem(it item.Stored) {
	if old, ok := s.items[it.ID]; ok {
		s.live -= int64(len(old.Data))
	}
	s.items[it.ID] = it
	s.live += int64(len(it.Data))
	s.nextID = max(s.nextID, it.ID+1)
}

func (s *Spool) frame(epoch, seq uint32, ids []uint64) {
	if epoch != s.epoch {
		s.epoch, s.acked = epoch, seq-1
		clear(s.frames)
	}
	s.frames[seq] = ids
}

func (s *Spool) ack(epoch, n uint32) {
	if epoch != s.epoch {
		return // acks of an epoch we never framed in: nothing to release
	}
	for seq, ids := range s.frames {
		if seq-s.acked-1 < n-s.acked { // acked < seq <= n, modulo 2^32
			s.drop(ids)
			delete(s.frames, seq)
		}
	}
	s.acked = n
}

func (s *Spool) drop(ids []uint64) {
	for _, id := range ids {
		if it, ok := s.items[id]; ok {
			s.live -= int64(len(it.Data))
			delete(s.items, id)
		}
	}
}

// NextID returns the id for the next item.
func (s *Spool) NextID() uint64 { return s.nextID }

// Restored returns the state a session resumes from.
func (s *Spool) Restored() item.Restored {
	r := item.Restored{Epoch: s.epoch, Acked: s.acked, PeerEpoch: s.peerEpoch, H: s.h}
	for seq := s.acked + 1; ; seq++ {
		ids, ok := s.frames[seq]
		if !ok {
			break
		}
		r.Frames = append(r.Frames, ids)
	}
	ids := make([]uint64, 0, len(s.items))
	for id := range s.items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.Items = append(r.Items, s.items[id])
	}
	return r
}

// Len returns the number of items and their data bytes.
func (s *Spool) Len() (int, int64) { return len(s.items), s.live }

// Add appends an item with id NextID() and returns the id.
func (s *Spool) Add(it item.Item) (uint64, error) {
	id := s.nextID
	st := item.Stored{ID: id, Item: it}
	p := appendItem(s.buf[:0], st)
	s.buf = p
	if err := s.write('J', p); err != nil {
		return 0, err
	}
	s.putItem(st)
	if s.policy == SyncAlways {
		if err := s.Sync(); err != nil {
			return id, err
		}
	}
	return id, nil
}

// Apply records the session's operations.
func (s *Spool) Apply(ops []item.Op) error {
	for _, o := range ops {
		var kind byte
		p := s.buf[:0]
		switch o.Kind {
		case item.OpFrame:
			kind = 'F'
			p = binary.AppendUvarint(p, uint64(o.Epoch))
			p = binary.AppendUvarint(p, uint64(o.N))
			for _, id := range o.IDs {
				p = binary.AppendUvarint(p, id)
			}
			s.frame(o.Epoch, o.N, slices.Clone(o.IDs))
		case item.OpAck:
			kind = 'A'
			p = binary.AppendUvarint(p, uint64(o.Epoch))
			p = binary.AppendUvarint(p, uint64(o.N))
			s.ack(o.Epoch, o.N)
		case item.OpDrop:
			kind = 'D'
			for _, id := range o.IDs {
				p = binary.AppendUvarint(p, id)
			}
			s.drop(o.IDs)
		case item.OpRecv:
			kind = 'R'
			p = binary.AppendUvarint(p, uint64(o.Epoch))
			p = binary.AppendUvarint(p, uint64(o.N))
			s.peerEpoch, s.h = o.Epoch, o.N
		default:
			continue
		}
		s.buf = p
		if err := s.write(kind, p); err != nil {
			return err
		}
	}
	if s.size > minCompact && s.size > 4*(s.live+int64(64*len(s.items))) {
		return s.compact()
	}
	return nil
}

func appendRecord(b []byte, kind byte, p []byte) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(p)))
	b = append(b, p...)
	c := crc32.Update(crc32.Checksum([]byte{kind}, crcTable), crcTable, p)
	return binary.BigEndian.AppendUint32(b, c)
}

func (s *Spool) write(kind byte, p []byte) error {
	rec := appendRecord(make([]byte, 0, len(p)+16), kind, p)
	s.fmu.RLock()
	n, err := s.f.Write(rec)
	s.fmu.RUnlock()
	s.size += int64(n)
	s.dirty.Store(true)
	if err != nil {
		return fmt.Errorf("spool: write: %w", err)
	}
	return nil
}

// Sync fsyncs the journal if it changed since the last Sync (never under
// SyncNone). It may run concurrently with the other methods.
func (s *Spool) Sync() error {
	if s.policy == SyncNone || !s.dirty.Swap(false) {
		return nil
	}
	s.syncs.Add(1)
	s.fmu.RLock()
	defer s.fmu.RUnlock()
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	return nil
}

// Policy returns the sync policy.
func (s *Spool) Policy() SyncPolicy { return s.policy }

// compact rewrites the journal with only the live state.
func (s *Spool) compact() error {
	path := filepath.Join(s.dir, fileName)
	tmp := path + ".new"
	var b []byte
	b = append(b, header...)
	r := s.Restored()
	for _, it := range r.Items {
		b = appendRecord(b, 'J', appendItem(nil, it))
	}
	if s.epoch != 0 {
		for i, ids := range r.Frames {
			p := binary.AppendUvarint(nil, uint64(s.epoch))
			p = binary.AppendUvarint(p, uint64(s.acked+1+uint32(i)))
			for _, id := range ids {
				p = binary.AppendUvarint(p, id)
			}
			b = appendRecord(b, 'F', p)
		}
		if len(r.Frames) == 0 && s.acked > 0 {
			// No frame left to name the epoch: an empty frame numbered
			// acked sets it, and the ack after it releases that frame.
			p := binary.AppendUvarint(nil, uint64(s.epoch))
			p = binary.AppendUvarint(p, uint64(s.acked))
			b = appendRecord(b, 'F', p)
			b = appendRecord(b, 'A', p)
		} else if len(r.Frames) > 0 {
			p := binary.AppendUvarint(nil, uint64(s.epoch))
			p = binary.AppendUvarint(p, uint64(s.acked))
			b = appendRecord(b, 'A', p)
		}
	}
	if s.peerEpoch != 0 {
		p := binary.AppendUvarint(nil, uint64(s.peerEpoch))
		p = binary.AppendUvarint(p, uint64(s.h))
		b = appendRecord(b, 'R', p)
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("spool: compact: %w", err)
	}
	nf, err := os.OpenFile(tmp, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool: compact: %w", err)
	}
	if err := nf.Sync(); err != nil {
		nf.Close()
		return fmt.Errorf("spool: compact: %w", err)
	}
	if _, err := nf.Seek(0, io.SeekEnd); err != nil {
		nf.Close()
		return fmt.Errorf("spool: compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		nf.Close()
		return fmt.Errorf("spool: compact: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	s.fmu.Lock()
	s.f.Close()
	s.f, s.size = nf, int64(len(b))
	s.fmu.Unlock()
	s.Compactions++
	return nil
}

// Close fsyncs (unless SyncNone) and closes the journal.
func (s *Spool) Close() error {
	err := s.Sync()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool: %w", cerr)
	}
	return err
}
