package compress

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func learnCorpus(t testing.TB, name string) [][]byte {
	t.Helper()
	st, err := ReadCapture(filepath.Join("..", "testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openLearner(t *testing.T, dir string) *Learner {
	t.Helper()
	l, err := OpenLearner(LearnConfig{Dir: dir, SampleBytes: MinLearnBytes, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hashes(ds []Dict) []DictHash {
	var h []DictHash
	for _, d := range ds {
		h = append(h, d.Hash)
	}
	return h
}

// The sender's learner (fed what the peer acknowledged) and the
// receiver's (fed what it delivered, in batches of other sizes) build the
// same dictionaries, and keep the newest LearnKeep.
func TestLearnersAgree(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")[:3000]
	snd, rcv := openLearner(t, t.TempDir()), openLearner(t, t.TempDir())
	defer snd.Close()
	defer rcv.Close()
	for i := 0; i < len(st); i += 7 {
		snd.Sent(st[i:min(i+7, len(st))])
	}
	for i := 0; i < len(st); i += 3 {
		rcv.Received(st[i:min(i+3, len(st))])
	}
	snd.Flush()
	rcv.Flush()
	send, _ := snd.Dicts()
	_, recv := rcv.Dicts()
	if len(send) != LearnKeep || !slices.Equal(hashes(send), hashes(recv)) {
		t.Fatalf("sender's dictionaries %v, receiver's %v: want the same %d", hashes(send), hashes(recv), LearnKeep)
	}
	if s := snd.Stats(); s.Trained[LearnOut] < 3 || s.Errors != 0 || s.Recorded[LearnOut] == 0 {
		t.Fatalf("stats %+v: want at least 3 trained, no errors", s)
	}
	// A dictionary primes an encoder and a decoder.
	enc, err := NewEncoder(WithDict(send[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(WithDict(recv[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st[:50] {
		b, err := enc.Encode([][]byte{s})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := dec.Decode(b); err != nil || string(out[0]) != string(s) {
			t.Fatalf("decode: %v", err)
		}
	}
}

// After a gap on one end (a crash lost what it had not saved), the two
// ends' cuts fall in step again and their dictionaries agree once the gap
// has left the sample.
func TestLearnersResync(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	st = st[:min(len(st), 5000)]
	a, b := openLearner(t, t.TempDir()), openLearner(t, t.TempDir())
	defer a.Close()
	defer b.Close()
	a.Sent(st[:100])
	b.Received(st[:100])
	a.Sent(st[100:130]) // b missed these
	a.Sent(st[130:])
	b.Received(st[130:])
	a.Flush()
	b.Flush()
	send, _ := a.Dicts()
	_, recv := b.Dicts()
	if len(send) == 0 || send[0].Hash != recv[0].Hash {
		t.Fatalf("newest dictionaries differ after the gap left the sample: %v vs %v", hashes(send), hashes(recv))
	}
}

// A restarted learner has the dictionaries and sample it saved; a corrupt
// or missing dictionary file is left out, counted and logged.
func TestLearnerRestartAndCorruption(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")[:3000]
	dir := t.TempDir()
	l := openLearner(t, dir)
	l.Received(st)
	l.Flush()
	_, want := l.Dicts()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(want) != LearnKeep {
		t.Fatalf("%d dictionaries, want %d", len(want), LearnKeep)
	}
	l = openLearner(t, dir)
	_, got := l.Dicts()
	l.Close()
	if !slices.Equal(hashes(got), hashes(want)) || l.Stats().Errors != 0 {
		t.Fatalf("after restart: %v (errors %d), want %v", hashes(got), l.Stats().Errors, hashes(want))
	}
	// Corrupt the newest, remove the other.
	in := filepath.Join(dir, "in")
	os.WriteFile(filepath.Join(in, want[0].Hash.String()+".zdict"), []byte("garbage"), 0o600)
	os.Remove(filepath.Join(in, want[1].Hash.String()+".zdict"))
	l = openLearner(t, dir)
	_, got = l.Dicts()
	if len(got) != 0 || l.Stats().Errors != 2 {
		t.Fatalf("with a corrupt and a missing dictionary: %v, %d errors; want none and 2", hashes(got), l.Stats().Errors)
	}
	l.Close()
	// A corrupt state file: counted, the learner starts afresh.
	os.WriteFile(filepath.Join(in, "state"), []byte("isthmus-learn 1\nxxxxxxxx"), 0o600)
	l = openLearner(t, dir)
	defer l.Close()
	if l.Stats().Errors != 1 {
		t.Fatalf("corrupt state: %d errors, want 1", l.Stats().Errors)
	}
}

// Training on a ~1 MB sample (TrainDict on 32-stanza streams).
func BenchmarkLearnTrain(b *testing.B) {
	st := learnCorpus(b, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	var sample [][]byte
	n := 0
	for _, s := range st {
		if n >= DefaultLearnBytes {
			break
		}
		if len(s) <= learnMaxStanza {
			sample = append(sample, s)
			n += len(s)
		}
	}
	b.SetBytes(int64(n))
	for b.Loop() {
		if _, err := TrainDict(LearnStreams(sample)); err != nil {
			b.Fatal(err)
		}
	}
}

// learnWindow is the sample a learner holds after recording st: the last
// stanzas up to bound bytes, none longer than learnMaxStanza.
func learnWindow(st [][]byte, bound int) [][]byte {
	var w [][]byte
	n := 0
	for i := len(st) - 1; i >= 0; i-- {
		if len(st[i]) > learnMaxStanza {
			continue
		}
		if n+len(st[i]) > bound {
			break
		}
		n += len(st[i])
		w = append(w, st[i])
	}
	slices.Reverse(w)
	return w
}

// coldSteady encodes each stream at batch 1 in an epoch of its own and
// returns the mean block bytes of the first 32 stanzas of each (cold) and
// of all their stanzas (steady); and, starting a new epoch every 128
// stanzas of the streams in a row, the mean of the first 32 of each epoch
// (cold128).
func coldSteady(t *testing.T, streams [][][]byte, opts ...Option) (cold, steady, cold128 float64) {
	t.Helper()
	enc, err := NewEncoder(opts...)
	if err != nil {
		t.Fatal(err)
	}
	var cb, cn, sb, sn, eb, en, i int
	for _, st := range streams {
		enc.Reset()
		for j, s := range st {
			b, err := enc.Encode([][]byte{s})
			if err != nil {
				t.Fatal(err)
			}
			if j < 32 {
				cb += len(b)
				cn++
			}
			sb += len(b)
			sn++
		}
	}
	for _, st := range streams {
		for _, s := range st {
			if i%128 == 0 {
				enc.Reset()
			}
			b, _ := enc.Encode([][]byte{s})
			if i%128 < 32 {
				eb += len(b)
				en++
			}
			i++
		}
	}
	return float64(cb) / float64(cn), float64(sb) / float64(sn), float64(eb) / float64(en)
}

// The gain of a dictionary learned from a link's traffic: learned from
// the first half of each capture of one generator set (one direction, as
// a learner with the default bound holds it at the end), measured on the
// second halves at batch 1: the first 32 stanzas of each (cold) against
// all of them (steady), and the first 32 of epochs starting every 128
// stanzas. ejabberd-slixmpp is traffic the built-in dictionary never saw.
//
//	go test -run TestLearnedGain -v ./compress/
func TestLearnedGain(t *testing.T) {
	for _, set := range []string{"ejabberd-slixmpp", "prosody-slixmpp", "ejabberd-aioxmpp", "prosody-aioxmpp"} {
		files, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", set+"-*.xml.gz"))
		var train [][]byte
		var test [][][]byte
		for _, f := range files {
			st := learnCorpus(t, filepath.Base(f))
			train = append(train, st[:len(st)/2]...)
			test = append(test, st[len(st)/2:])
		}
		window := learnWindow(train, DefaultLearnBytes)
		d, err := TrainDict(LearnStreams(window))
		if err != nil {
			t.Fatal(err)
		}
		bc, bs, b128 := coldSteady(t, test)
		lc, ls, l128 := coldSteady(t, test, WithDict(d))
		t.Logf("%s: learned from %d stanzas (%d in the sample), measured on %d streams", set, len(train), len(window), len(test))
		t.Logf("  built-in dictionary: cold start %.1f B/stanza, steady %.1f (cold÷steady %.2f); epochs every 128: cold %.1f", bc, bs, bc/bs, b128)
		t.Logf("  learned dictionary:  cold start %.1f B/stanza, steady %.1f (cold÷steady %.2f); epochs every 128: cold %.1f", lc, ls, lc/ls, l128)
		if lc >= bc || l128 >= b128 {
			t.Errorf("%s: learned dictionary's cold start %.1f (%.1f) B/stanza is not below the built-in one's %.1f (%.1f)", set, lc, l128, bc, b128)
		}
	}
}

// Stanzas the codec canonicalizes (an extra space before an attribute,
// a character reference) reach the receiver's learner as the link's
// decoder gives them back and the sender's as they were sent: both
// sample the canonical form and build the same dictionaries.
func TestLearnersAgreeCanonical(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")[:3000]
	var sent [][]byte
	for i, s := range st {
		if i%2 == 0 {
			s = bytes.Replace(s, []byte(" to="), []byte("  to="), 1)
			s = bytes.Replace(s, []byte("<body>"), []byte("<body>&#72;"), 1)
		}
		sent = append(sent, s)
	}
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	var delivered [][]byte
	changed := 0
	for i := 0; i < len(sent); i += 5 {
		batch := sent[i:min(i+5, len(sent))]
		b, err := enc.Encode(batch)
		if err != nil {
			t.Fatal(err)
		}
		out, err := dec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for j := range out {
			if !bytes.Equal(out[j], batch[j]) {
				changed++
			}
		}
		delivered = append(delivered, out...)
	}
	if changed < len(sent)/3 {
		t.Fatalf("only %d of %d stanzas canonicalized: the test tests nothing", changed, len(sent))
	}
	snd, rcv := openLearner(t, t.TempDir()), openLearner(t, t.TempDir())
	defer snd.Close()
	defer rcv.Close()
	snd.Sent(sent)
	rcv.Received(delivered)
	snd.Flush()
	rcv.Flush()
	send, _ := snd.Dicts()
	_, recv := rcv.Dicts()
	if len(send) == 0 || !slices.Equal(hashes(send), hashes(recv)) {
		t.Fatalf("sender's dictionaries %v, receiver's %v", hashes(send), hashes(recv))
	}
}
