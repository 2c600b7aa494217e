package compress

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/isthmus-xmpp/isthmus/internal/atomicfile"
)

// DictHash names a dictionary: the first 8 bytes of its SHA-256. The zero
// value stands for the built-in (embedded) dictionary.
type DictHash [8]byte

// HashDict returns the name of dictionary d.
func HashDict(d []byte) DictHash {
	s := sha256.Sum256(d)
	return DictHash(s[:8])
}

// IsZero reports whether h names the built-in dictionary.
func (h DictHash) IsZero() bool { return h == DictHash{} }

func (h DictHash) String() string {
	if h.IsZero() {
		return "built-in"
	}
	return hex.EncodeToString(h[:])
}

// Dict is a learned dictionary and its name (HashDict of Data).
type Dict struct {
	Hash DictHash
	Data []byte
}

// Learning (see Learner). Both ends of a link must use the same values:
// they are part of what makes the two ends' dictionaries equal.
const (
	// DefaultLearnBytes is the default sample bound per direction.
	DefaultLearnBytes = 512 << 10
	// MinLearnBytes is the least sample bound.
	MinLearnBytes = 256 << 10
	// learnChunk is how many stanzas of the sample train as one stream:
	// TrainDict trains on the structural form as an epoch starts, and a
	// dictionary primes an epoch's first stanzas.
	learnChunk = 32
	// learnMaxStanza: longer stanzas (avatars, file transfers) are not
	// sampled; their payload crosses as binary and teaches zstd nothing.
	// The bound applies to the canonical form, which both ends see alike;
	// learnMaxRaw is the cheap first cut, before the form is computed.
	learnMaxStanza = 8192
	learnMaxRaw    = 64 << 10
	// learnMinStanzas: no dictionary from fewer stanzas.
	learnMinStanzas = 64
	// learnCutOdds: a stanza ends a training period (a cut) when a
	// quarter of the sample bound was recorded since the last cut, the
	// sample holds half the bound, and the stanza's FNV-1a hash is 0
	// modulo learnCutOdds (see cut).
	learnCutOdds = 8
	// LearnKeep is how many learned dictionaries a direction keeps.
	LearnKeep = 2
	// learnPendingMax bounds what waits for the worker, in multiples of
	// the sample bound; beyond it stanzas are not sampled (counted).
	learnPendingMax = 16
)

// Learn directions.
const (
	LearnOut = 0 // stanzas this side sent, as the peer acknowledged them
	LearnIn  = 1 // stanzas this side received, as it delivered them
)

var learnNames = [2]string{"out", "in"}

// LearnConfig configures a Learner.
type LearnConfig struct {
	Dir         string // where samples and dictionaries live (created if missing)
	SampleBytes int    // bytes of stanzas sampled per direction (default DefaultLearnBytes, at least MinLearnBytes)
	Logger      *slog.Logger
}

// LearnStats are a Learner's counters.
type LearnStats struct {
	Recorded [2]uint64 // stanzas sampled per direction (LearnOut, LearnIn)
	Trained  [2]uint64 // dictionaries built per direction
	// Errors counts what went wrong and was logged: a state or dictionary
	// file missing, corrupt or unwritable.
	Errors uint64
	// Dropped counts stanzas not sampled because the worker fell behind
	// (the two ends' samples differ until they leave the window).
	Dropped uint64
}

// Learner learns a link's own traffic, per direction, so that both
// gateways of a pair can prime an epoch with a dictionary built from what
// crossed recently instead of the built-in one. Each direction keeps a
// sample: the most recent stanzas up to SampleBytes, in link order (what
// this side sent, in the order the peer acknowledged it; what it
// received, in the order it delivered it), each in the codec's canonical
// form (Decode(Encode(x))), so that the sender's sample of a direction and
// the receiver's are byte for byte the same. At a cut (after a quarter of
// the bound was recorded since the last one and the sample holds at least
// half the bound, at a stanza whose FNV-1a hash is 0 mod 8: a rule both
// ends apply to the same stanzas, and that falls in step again after the
// samples differed) the direction trains a
// dictionary with TrainDict on its sample in chunks of 32 stanzas, names
// it by HashDict, writes it to Dir and keeps the newest LearnKeep. A
// direction's sample, cut state and dictionary names are saved to Dir at
// each cut, every eighth of the bound and on Close (temporary file and
// rename), so a restarted gateway has the dictionaries it had.
//
// Recording only queues: canonicalizing, training and writing run on the
// Learner's own goroutine (Close ends it). Safe for concurrent use.
type Learner struct {
	cfg LearnConfig
	log *slog.Logger
	dir [2]*learnDir

	mu      sync.Mutex // guards the following fields and each learnDir's pending, dicts
	wake    *sync.Cond
	closing bool
	busy    bool // the worker is sampling what it took from pending
	stats   LearnStats
	done    chan struct{}
	err     error // the first save error at Close
}

type learnDir struct {
	name string
	path string
	// The worker's.
	window  [][]byte
	bytes   int // in window
	since   int // bytes recorded since the last cut
	unsaved int // bytes recorded since the last save
	enc     *Encoder
	dec     *Decoder
	// Guarded by Learner.mu.
	pending      [][]byte
	pendingBytes int
	dicts        []Dict // newest first
}

// OpenLearner loads what an earlier run saved in cfg.Dir and starts the
// learner's goroutine. A state or dictionary file that is missing,
// corrupt or of another codec version is logged, counted in
// Stats().Errors (corruption) and left out: the learner starts without it.
func OpenLearner(cfg LearnConfig) (*Learner, error) {
	if cfg.SampleBytes <= 0 {
		cfg.SampleBytes = DefaultLearnBytes
	}
	cfg.SampleBytes = max(cfg.SampleBytes, MinLearnBytes)
	l := &Learner{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.wake = sync.NewCond(&l.mu)
	for i, name := range learnNames {
		d := &learnDir{name: name, path: filepath.Join(cfg.Dir, name)}
		if err := os.MkdirAll(d.path, 0o700); err != nil {
			return nil, fmt.Errorf("compress: learner: %w", err)
		}
		l.dir[i] = d
		l.load(d)
	}
	go l.run()
	return l, nil
}

// Sent records stanzas this side sent, as the peer acknowledged them, in
// order. The learner keeps copies.
func (l *Learner) Sent(stanzas [][]byte) { l.record(LearnOut, stanzas) }

// Received records stanzas this side received, as it delivered them, in
// order. The learner keeps copies.
func (l *Learner) Received(stanzas [][]byte) { l.record(LearnIn, stanzas) }

func (l *Learner) record(dir int, stanzas [][]byte) {
	if len(stanzas) == 0 {
		return
	}
	d := l.dir[dir]
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return
	}
	for _, s := range stanzas {
		if len(s) > learnMaxRaw {
			continue
		}
		if d.pendingBytes+len(s) > learnPendingMax*l.cfg.SampleBytes {
			if l.stats.Dropped == 0 {
				l.log.Warn("compress: learner: behind; stanzas not sampled", "dir", d.name)
			}
			l.stats.Dropped++
			continue
		}
		d.pending = append(d.pending, bytes.Clone(s))
		d.pendingBytes += len(s)
	}
	l.wake.Broadcast()
}

// Dicts returns the learned dictionaries, newest first: send for this
// side's encoder (learned from what it sent), recv for its decoder
// (learned from what it received, which the peer learned as its send).
func (l *Learner) Dicts() (send, recv []Dict) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Dict(nil), l.dir[LearnOut].dicts...), append([]Dict(nil), l.dir[LearnIn].dicts...)
}

// Stats returns the learner's counters.
func (l *Learner) Stats() LearnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close samples what was recorded, saves both directions and stops the
// learner's goroutine. It returns the first error saving.
func (l *Learner) Close() error {
	l.mu.Lock()
	if !l.closing {
		l.closing = true
		l.wake.Broadcast()
	}
	l.mu.Unlock()
	<-l.done
	return l.err
}

// Flush waits until everything recorded so far has been sampled (and any
// cut it made trained and saved). For tests and measurements.
func (l *Learner) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.closing && (len(l.dir[0].pending) > 0 || len(l.dir[1].pending) > 0 || l.busy) {
		l.wake.Wait()
	}
}

func (l *Learner) run() {
	defer close(l.done)
	l.mu.Lock()
	for {
		var batch [2][][]byte
		for i, d := range l.dir {
			batch[i], d.pending, d.pendingBytes = d.pending, nil, 0
		}
		if len(batch[0])+len(batch[1]) == 0 {
			if l.closing {
				l.mu.Unlock()
				for _, d := range l.dir {
					if err := l.save(d); err != nil && l.err == nil {
						l.err = err
					}
				}
				return
			}
			l.busy = false
			l.wake.Broadcast()
			l.wake.Wait()
			continue
		}
		l.busy = true
		l.mu.Unlock()
		for i, d := range l.dir {
			for _, s := range batch[i] {
				l.sample(i, d, s)
			}
		}
		l.mu.Lock()
	}
}

// sample adds one stanza to a direction's sample, in canonical form, and
// trains at a cut.
func (l *Learner) sample(dir int, d *learnDir, s []byte) {
	c := d.canon(s)
	if len(c) > learnMaxStanza {
		return
	}
	d.window = append(d.window, c)
	d.bytes += len(c)
	d.since += len(c)
	d.unsaved += len(c)
	for d.bytes > l.cfg.SampleBytes && len(d.window) > 1 {
		d.bytes -= len(d.window[0])
		d.window[0] = nil
		d.window = d.window[1:]
	}
	l.mu.Lock()
	l.stats.Recorded[dir]++
	l.mu.Unlock()
	if cut(c, d.since, d.bytes, len(d.window), l.cfg.SampleBytes) {
		d.since = 0
		l.train(dir, d)
		return
	}
	if d.unsaved >= l.cfg.SampleBytes/8 {
		l.saveLogged(d)
	}
}

// cut reports whether the stanza c, just sampled, ends a training period.
func cut(c []byte, since, bytes, stanzas, bound int) bool {
	if since < bound/4 || bytes < bound/2 || stanzas < learnMinStanzas {
		return false
	}
	h := fnv.New32a()
	h.Write(c)
	return h.Sum32()%learnCutOdds == 0
}

// canon returns the canonical form of s: what a decoder gives back for
// it (see the package doc), so that the sender's sample and the
// receiver's are the same bytes. The pair runs without a dictionary.
func (d *learnDir) canon(s []byte) []byte {
	if d.enc == nil {
		var err error
		if d.enc, err = NewEncoder(WithDict(nil), WithLevel(1)); err == nil {
			d.dec, err = NewDecoder(WithDict(nil))
		}
		if err != nil {
			d.enc = nil
			return bytes.Clone(s)
		}
	}
	b, err := d.enc.Encode([][]byte{s})
	var out [][]byte
	if err == nil {
		out, err = d.dec.Decode(b)
	}
	if err != nil || len(out) != 1 {
		// Cannot happen (the stanza crossed the link); start afresh.
		d.dec.Close()
		d.enc, d.dec = nil, nil
		return bytes.Clone(s)
	}
	return out[0]
}

// LearnStreams splits a sample into the streams TrainDict is given: runs
// of 32 stanzas, each an epoch's cold start.
func LearnStreams(sample [][]byte) [][][]byte {
	var streams [][][]byte
	for i := 0; i < len(sample); i += learnChunk {
		streams = append(streams, sample[i:min(i+learnChunk, len(sample))])
	}
	return streams
}

// train builds a dictionary from a direction's sample at a cut, writes
// it and the direction's state, and makes it the newest.
func (l *Learner) train(dir int, d *learnDir) {
	dict, err := TrainDict(LearnStreams(d.window))
	if err != nil {
		// zstd finds nothing to learn in some samples (few stanzas, all
		// alike): both ends fail alike, and keep what they had.
		l.log.Info("compress: learner: no dictionary from this sample", "dir", d.name, "sample_stanzas", len(d.window), "err", err)
		l.saveLogged(d)
		return
	}
	h := HashDict(dict)
	if err := atomicfile.WriteFile(filepath.Join(d.path, h.String()+".zdict"), dict, 0o600); err != nil {
		l.fail(d, "writing a dictionary", err)
		return
	}
	l.mu.Lock()
	d.dicts = append([]Dict{{h, dict}}, d.dicts...)
	if len(d.dicts) > LearnKeep {
		d.dicts = d.dicts[:LearnKeep]
	}
	l.stats.Trained[dir]++
	l.mu.Unlock()
	l.log.Info("compress: learner: new dictionary", "dir", d.name, "dict", h.String(), "bytes", len(dict),
		"sample_stanzas", len(d.window), "sample_bytes", d.bytes)
	l.saveLogged(d)
}

func (l *Learner) fail(d *learnDir, what string, err error) {
	l.mu.Lock()
	l.stats.Errors++
	l.mu.Unlock()
	l.log.Error("compress: learner: "+what, "dir", d.name, "err", err)
}

func (l *Learner) saveLogged(d *learnDir) {
	if err := l.save(d); err != nil {
		l.fail(d, "saving", err)
	}
}

// The state file of a direction ("state" in its directory):
//
//	"isthmus-learn 1\n"
//	uvarint(compress.Version) uvarint(since)
//	uvarint(n) n × 8-byte dictionary hash, newest first
//	uvarint(m) m × (uvarint(len) stanza)
//	CRC-32 (IEEE, big-endian) of all the above
const learnMagic = "isthmus-learn 1\n"

// save writes a direction's state and removes dictionary files it no
// longer names.
func (l *Learner) save(d *learnDir) error {
	l.mu.Lock()
	dicts := append([]Dict(nil), d.dicts...)
	l.mu.Unlock()
	b := []byte(learnMagic)
	b = binary.AppendUvarint(b, Version)
	b = binary.AppendUvarint(b, uint64(d.since))
	b = binary.AppendUvarint(b, uint64(len(dicts)))
	keep := map[string]bool{}
	for _, x := range dicts {
		b = append(b, x.Hash[:]...)
		keep[x.Hash.String()+".zdict"] = true
	}
	b = binary.AppendUvarint(b, uint64(len(d.window)))
	for _, s := range d.window {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	if err := atomicfile.WriteFile(filepath.Join(d.path, "state"), b, 0o600); err != nil {
		return err
	}
	d.unsaved = 0
	names, _ := filepath.Glob(filepath.Join(d.path, "*.zdict"))
	for _, n := range names {
		if !keep[filepath.Base(n)] {
			os.Remove(n)
		}
	}
	return nil
}

// load reads a direction's state and dictionaries, leaving out what is
// missing or corrupt (logged; corruption counted).
func (l *Learner) load(d *learnDir) {
	b, err := os.ReadFile(filepath.Join(d.path, "state"))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		l.fail(d, "reading the state", err)
		return
	}
	hashes, window, since, err := parseLearnState(b)
	if err != nil {
		l.fail(d, "reading the state", fmt.Errorf("%s: %w", filepath.Join(d.path, "state"), err))
		return
	}
	d.window, d.since = window, since
	for _, s := range window {
		d.bytes += len(s)
	}
	for _, h := range hashes {
		p := filepath.Join(d.path, h.String()+".zdict")
		data, err := os.ReadFile(p)
		if err == nil && HashDict(data) != h {
			err = fmt.Errorf("%s: content does not match its name (hash %s)", p, HashDict(data))
		}
		if err != nil {
			l.fail(d, "loading a dictionary: left out", err)
			continue
		}
		d.dicts = append(d.dicts, Dict{h, data})
	}
	l.log.Info("compress: learner: loaded", "dir", d.name, "dicts", len(d.dicts), "sample_stanzas", len(d.window), "sample_bytes", d.bytes)
}

var errLearnState = errors.New("corrupt learner state")

func parseLearnState(b []byte) (hashes []DictHash, window [][]byte, since int, err error) {
	if len(b) < len(learnMagic)+4 || !strings.HasPrefix(string(b), learnMagic) {
		return nil, nil, 0, fmt.Errorf("%w: bad header", errLearnState)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, 0, fmt.Errorf("%w: checksum", errLearnState)
	}
	p := body[len(learnMagic):]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	ver, ok1 := next()
	sn, ok2 := next()
	nd, ok3 := next()
	if !ok1 || !ok2 || !ok3 || nd > 64 || uint64(len(p)) < nd*8 {
		return nil, nil, 0, fmt.Errorf("%w: header fields", errLearnState)
	}
	for range nd {
		hashes = append(hashes, DictHash(p[:8]))
		p = p[8:]
	}
	if ver != Version {
		// Dictionaries of another codec version prime another structural
		// form: start without them (the sample still serves).
		hashes = nil
	}
	m, ok := next()
	if !ok || m > uint64(len(p)) {
		return nil, nil, 0, fmt.Errorf("%w: stanza count", errLearnState)
	}
	for range m {
		n, ok := next()
		if !ok || n > uint64(len(p)) {
			return nil, nil, 0, fmt.Errorf("%w: stanza length", errLearnState)
		}
		window = append(window, bytes.Clone(p[:n]))
		p = p[n:]
	}
	if len(p) != 0 {
		return nil, nil, 0, fmt.Errorf("%w: %d trailing bytes", errLearnState, len(p))
	}
	return hashes, window, int(min(sn, 1<<40)), nil
}
