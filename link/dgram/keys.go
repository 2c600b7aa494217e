package dgram

import (
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"

	"filippo.io/edwards25519"
	"github.com/flynn/noise"
)

// Keys are one side's Noise static key pair and the peer's pinned static
// public key, all X25519.
type Keys struct {
	Static noise.DHKey
	Peer   []byte
}

// KeysFromEd25519 derives the X25519 keys of a pair from its Ed25519 link
// keys (package link/linkkey), so that the datagram transport needs no key
// beside the one `isthmus keygen` writes and the peer pins: the private
// scalar is the clamped first half of SHA-512(seed), the one Ed25519 signs
// with (RFC 8032 §5.1.5), and the public key is the same point in
// Montgomery form (RFC 7748 §4.1), so each side can compute the other's
// X25519 key from its pinned Ed25519 key. The key is used for both
// signatures (TLS) and Diffie-Hellman (Noise); the two never sign or agree
// on attacker-chosen data in a way that lets one serve the other.
func KeysFromEd25519(priv ed25519.PrivateKey, peer ed25519.PublicKey) (Keys, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Keys{}, fmt.Errorf("dgram: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	h := sha512.Sum512(priv.Seed())
	x := h[:32]
	x[0] &= 248
	x[31] &= 127
	x[31] |= 64
	own, err := montgomery(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return Keys{}, fmt.Errorf("dgram: own public key: %w", err)
	}
	pk, err := montgomery(peer)
	if err != nil {
		return Keys{}, fmt.Errorf("dgram: peer key: %w", err)
	}
	return Keys{Static: noise.DHKey{Private: append([]byte(nil), x...), Public: own}, Peer: pk}, nil
}

func montgomery(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("not a point of Ed25519: %w", err)
	}
	return p.BytesMontgomery(), nil
}
