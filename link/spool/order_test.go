package spool

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/item"
)

// TestRandomKillsKeepPairOrder sends messages and presence of three pairs
// with random kills of either side, lost frames and reconnects; what each
// pair's receiver got is a subsequence of what was handed over, every
// message arrives exactly once, and so does the last presence of each key.
func TestRandomKillsKeepPairOrder(t *testing.T) {
	for seed := range 10 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		a, b := newSide(t, 100), newSide(t, 200)
		now := t0
		connect(now, a, b)
		pairs := []string{"p|q", "p|r", "s|q"}
		pairOf := map[string]string{}
		handed := map[string][]string{}
		var hiTags []string
		lastKey := map[string]string{}
		var got []string
		for i := range 300 {
			switch r := rng.IntN(20); {
			case r < 13:
				tag := fmt.Sprint(i)
				pair := pairs[rng.IntN(len(pairs))]
				data := fmt.Sprintf("<x n='%s'/>", tag)
				cls, key := item.ClassMessage, ""
				if rng.IntN(2) == 0 {
					cls, key = item.ClassPresence, fmt.Sprintf("%s/%d", pair, rng.IntN(2))
					lastKey[key] = tag
				} else {
					hiTags = append(hiTags, tag)
				}
				it := item.Item{Data: []byte(data), Class: cls, Coalesce: key, Pair: pair}
				id, err := a.sp.Add(it)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.s.Enqueue(now, id, it); err != nil {
					t.Fatal(err)
				}
				a.flush()
				pairOf[tag] = pair
				handed[pair] = append(handed[pair], tag)
			case r < 17:
				now = now.Add(time.Duration(rng.IntN(30)) * time.Millisecond)
				toB, _ := exchange(now, a, b)
				got = append(got, toB...)
			case r == 17:
				now = now.Add(10 * time.Millisecond)
				a.poll(now) // framed, lost with the connection
				connect(now, a, b)
			case r == 18:
				a.restart()
				connect(now, a, b)
			default:
				b.restart()
				connect(now, a, b)
			}
		}
		for range 5 {
			now = now.Add(2 * time.Second)
			toB, _ := exchange(now, a, b)
			got = append(got, toB...)
		}
		seen := map[string]bool{}
		recv := map[string][]string{}
		for _, g := range got {
			tag := strings.TrimSuffix(strings.TrimPrefix(g, "<x n='"), "'/>")
			if seen[tag] {
				t.Fatalf("seed %d: %s delivered twice", seed, tag)
			}
			seen[tag] = true
			recv[pairOf[tag]] = append(recv[pairOf[tag]], tag)
		}
		for pair, h := range handed {
			r, j := recv[pair], 0
			for _, tag := range h {
				if j < len(r) && r[j] == tag {
					j++
				}
			}
			if j != len(r) {
				t.Fatalf("seed %d: pair %s got %q, not a subsequence of %q", seed, pair, r, h)
			}
		}
		for _, tag := range hiTags {
			if !seen[tag] {
				t.Fatalf("seed %d: message %s lost", seed, tag)
			}
		}
		for key, tag := range lastKey {
			if !seen[tag] {
				t.Fatalf("seed %d: last presence %s of %s lost", seed, tag, key)
			}
		}
		if n, _ := a.sp.Len(); n != 0 {
			t.Errorf("seed %d: %d items left in the sender's spool", seed, n)
		}
	}
}
