package dgram

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/isthmus-xmpp/isthmus/internal/atomicfile"
)

// State is what a gateway must remember across restarts so that a replayed
// MsgInit stays refused: the largest handshake stamp accepted from the peer
// (Accepted) and the largest this side sent (Sent, so that its next stamp
// is larger even when its clock went back). It is kept in a small text
// file, replaced atomically (written aside, synced, renamed) each time it
// changes, that is once per handshake:
//
//	isthmus datagram state 1
//	peer <the peer's X25519 public key, hex>
//	accepted <uint64>
//	sent <uint64>
//
// A file naming another peer key counts as no record of that peer (Accepted
// 0): stamps are per peer.
type State struct {
	Path     string // "" : kept in memory only
	Peer     []byte
	Accepted uint64
	Sent     uint64
}

const stateMagic = "isthmus datagram state 1"

// LoadState reads the state file at path for the peer's static key; a
// missing file is an empty state (a first start).
func LoadState(path string, peer []byte) (*State, error) {
	st := &State{Path: path, Peer: bytes.Clone(peer)}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dgram: state: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || lines[0] != stateMagic {
		return nil, fmt.Errorf("dgram: state file %s: not an %q file", path, stateMagic)
	}
	var filePeer []byte
	for i, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		var err error
		switch {
		case i == 0 && k == "peer":
			filePeer, err = hex.DecodeString(v)
		case i == 1 && k == "accepted":
			st.Accepted, err = strconv.ParseUint(v, 10, 64)
		case i == 2 && k == "sent":
			st.Sent, err = strconv.ParseUint(v, 10, 64)
		default:
			err = errors.New("unexpected field")
		}
		if err != nil {
			return nil, fmt.Errorf("dgram: state file %s, line %d %q: %v", path, i+2, l, err)
		}
	}
	if !bytes.Equal(filePeer, peer) {
		st.Accepted = 0 // another peer's stamps
	}
	return st, nil
}

// Save writes the state durably (nothing to do without a Path).
func (s *State) Save() error {
	if s.Path == "" {
		return nil
	}
	data := fmt.Sprintf("%s\npeer %x\naccepted %d\nsent %d\n", stateMagic, s.Peer, s.Accepted, s.Sent)
	if err := atomicfile.WriteFile(s.Path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("dgram: state: %w", err)
	}
	return nil
}
