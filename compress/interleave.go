package compress

import (
	"bytes"
	"regexp"
)

// Interleave returns an order in which to replay the two directions of one
// S2S session, x (A→B) and y (B→A), as a link would carry them: a capture
// keeps each direction's order but no timestamps. The order advances both
// in proportion to their lengths, except that a stanza that answers an id
// the other direction carries (an iq result or error to a get or set, a
// receipt or a marker to a message: an id attribute below the root, or the
// root id of an iq result or error) waits until the other direction's
// first stanza carrying that id as its own root id has been replayed: an
// answer never precedes its request. Each element of the result is 0 for
// the next stanza of x, 1 for the next of y.
func Interleave(x, y [][]byte) []byte {
	st := [2][][]byte{x, y}
	var origin [2]map[string]int // id -> first position where it is a root id (not an answer)
	var needs [2][][]string      // ids each stanza answers
	for s := range st {
		origin[s] = map[string]int{}
		needs[s] = make([][]string, len(st[s]))
		for i, b := range st[s] {
			root, answers := idsOf(b)
			if root != "" && !isAnswer(b) {
				if _, ok := origin[s][root]; !ok {
					origin[s][root] = i
				}
			}
			needs[s][i] = answers
		}
	}
	var pos [2]int
	// blockedUntil returns how far the other stream must be replayed
	// before stanza pos[s] of s may go (0 if it may go now).
	blockedUntil := func(s int) int {
		o, need := 1-s, 0
		for _, v := range needs[s][pos[s]] {
			if q, ok := origin[o][v]; ok && q >= pos[o] {
				// The other stream sent it, and x's own origin of it (if
				// any) is not earlier.
				if p, mine := origin[s][v]; !mine || p > pos[s] {
					need = max(need, q+1)
				}
			}
		}
		return need
	}
	out := make([]byte, 0, len(x)+len(y))
	for pos[0] < len(x) || pos[1] < len(y) {
		s := 0
		switch {
		case pos[0] >= len(x):
			s = 1
		case pos[1] >= len(y):
			s = 0
		case float64(pos[1]+1)/float64(len(y)) < float64(pos[0]+1)/float64(len(x)):
			s = 1
		}
		if pos[1-s] < len(st[1-s]) && blockedUntil(s) > pos[1-s] {
			if o := 1 - s; blockedUntil(o) <= pos[s] {
				s = o // replay the other stream toward what s waits for
			}
		}
		out = append(out, byte(s))
		pos[s]++
	}
	return out
}

// IDSet returns the values of the id attributes (at any depth) of the
// stanzas that are at least minLen characters: what the two directions of
// one session share, and different sessions do not (`isthmus bench` pairs
// captures by it).
func IDSet(stanzas [][]byte, minLen int) map[string]bool {
	out := map[string]bool{}
	for _, st := range stanzas {
		for _, m := range idAttr.FindAllSubmatch(st, -1) {
			v := m[1]
			if v == nil {
				v = m[2]
			}
			if len(v) >= minLen {
				out[string(v)] = true
			}
		}
	}
	return out
}

var idAttr = regexp.MustCompile(`\sid=(?:'([^']*)'|"([^"]*)")`)

// idsOf returns a stanza's root id and the ids of the elements below the
// root (and the root id too when the stanza is an iq result or error).
func idsOf(st []byte) (root string, answers []string) {
	end := bytes.IndexByte(st, '>')
	if end < 0 {
		return "", nil
	}
	for _, m := range idAttr.FindAllSubmatchIndex(st, -1) {
		var v []byte
		if m[2] >= 0 {
			v = st[m[2]:m[3]]
		} else {
			v = st[m[4]:m[5]]
		}
		if m[0] < end {
			if root == "" {
				root = string(v)
			}
			continue
		}
		answers = append(answers, string(v))
	}
	if root != "" && isAnswer(st) {
		answers = append(answers, root)
	}
	return root, answers
}

var iqAnswer = regexp.MustCompile(`^<iq\s[^>]*type=['"](?:result|error)['"]`)

func isAnswer(st []byte) bool { return iqAnswer.Match(st) }
