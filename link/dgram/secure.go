package dgram

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flynn/noise"
)

// First byte of every datagram; see the package doc.
const (
	MsgInit = 0x81 // Noise KK message 1, initiator to responder
	MsgResp = 0x82 // Noise KK message 2, responder to initiator

	kindHandshake = 0x80
	flagPhase     = 0x40 // key phase of a transport datagram
	flagPN2       = 0x20 // the packet number takes 2 bytes (else 1)
	// FlagAck and the following are the ARQ's flags (see ARQ).
	FlagAck    = 0x10
	FlagData   = 0x08
	FlagSeq2   = 0x04
	FlagAckNow = 0x02
	FlagMask   = 0x01 // the ack reports missing datagrams
	flagsARQ   = FlagAck | FlagData | FlagSeq2 | FlagAckNow | FlagMask
)

// TagSize is the AEAD tag of every transport datagram.
const TagSize = 16

// StampSize is the MsgInit's encrypted payload: the initiator's timestamp.
const StampSize = 8

// InitSize and RespSize are the lengths of the handshake datagrams: MsgInit
// carries the initiator's ephemeral key and its encrypted timestamp (1 + 32
// + 8 + 16), MsgResp the responder's ephemeral key and an empty payload's
// tag (1 + 32 + 16).
const (
	InitSize = 1 + 32 + StampSize + TagSize
	RespSize = 1 + 32 + TagSize
)

// Overhead is the most a transport datagram adds around the ARQ's plaintext:
// the first byte, a 2-byte packet number and the tag.
const Overhead = 1 + 2 + TagSize

var prologue = []byte("isthmus datagram 1")

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Errors of Open and the handshake; the Channel counts each in Stats.
var (
	ErrShort  = errors.New("dgram: datagram too short or malformed")
	ErrReplay = errors.New("dgram: replayed or too old datagram")
	ErrAuth   = errors.New("dgram: datagram fails authentication")
	// ErrStale is a MsgInit that authenticates but whose timestamp is not
	// above the largest the responder accepted: a replay (or the
	// initiator's clock and state went back).
	ErrStale = errors.New("dgram: handshake timestamp not above the last accepted one (replayed MsgInit)")
)

// ChannelConfig sets the rekeying and replay rules of a Channel.
type ChannelConfig struct {
	RekeyInterval  time.Duration // the send key changes after this long (default 1h)
	RekeyDatagrams uint64        // ...or after this many datagrams under it (default 1<<20)
	KeepPrevious   time.Duration // the previous receive key serves late datagrams this long (default 2m)
	Window         int           // replay window in datagrams (default 1024, a multiple of 64)
}

func (c *ChannelConfig) populate() {
	if c.RekeyInterval <= 0 {
		c.RekeyInterval = time.Hour
	}
	if c.RekeyDatagrams == 0 {
		c.RekeyDatagrams = 1 << 20
	}
	if c.KeepPrevious <= 0 {
		c.KeepPrevious = 2 * time.Minute
	}
	if c.Window <= 0 {
		c.Window = 1024
	}
	c.Window = (c.Window + 63) / 64 * 64
}

// Initiation is an outgoing handshake waiting for the responder's message.
type Initiation struct {
	hs    *noise.HandshakeState
	Msg   []byte // the MsgInit datagram; send it again, byte for byte, until answered
	Stamp uint64 // the timestamp it carries
}

// Initiate starts a Noise KK handshake with the peer (both static keys are
// known in advance, so the first message already authenticates the
// initiator and the second the responder). stamp must be larger than every
// stamp this side sent before, across restarts (see Stamp): the responder
// refuses a MsgInit whose stamp is not above the largest it accepted, which
// is what makes a replayed MsgInit harmless.
func Initiate(k Keys, stamp uint64) (*Initiation, error) {
	hs, err := newHandshake(k, true)
	if err != nil {
		return nil, err
	}
	msg, _, _, err := hs.WriteMessage([]byte{MsgInit}, binary.BigEndian.AppendUint64(nil, stamp))
	if err != nil {
		return nil, fmt.Errorf("dgram: handshake: %w", err)
	}
	return &Initiation{hs: hs, Msg: msg, Stamp: stamp}, nil
}

// Stamp returns the timestamp for a new MsgInit: the wall clock in
// nanoseconds since 1970 (as WireGuard's TAI64N), or last+1 when the clock
// is not past last, the largest stamp sent before (persist it: a gateway
// whose clock goes back across a restart would otherwise be refused until
// it catches up).
func Stamp(now time.Time, last uint64) uint64 {
	s := uint64(max(now.UnixNano(), 0))
	return max(s, last+1)
}

// Complete reads the responder's MsgResp datagram and returns the channel.
func (in *Initiation) Complete(now time.Time, msg []byte, cfg ChannelConfig) (*Channel, error) {
	if len(msg) != RespSize || msg[0] != MsgResp {
		return nil, ErrShort
	}
	if _, cs1, cs2, err := in.hs.ReadMessage(nil, msg[1:]); err != nil || cs1 == nil {
		return nil, ErrAuth
	} else {
		return newChannel(now, cfg, cs1.UnsafeKey(), cs2.UnsafeKey()), nil
	}
}

// Respond answers an initiator's MsgInit datagram: the channel, the MsgResp
// datagram to send back and the MsgInit's stamp. A valid MsgInit proves the
// initiator holds its static key, not that it is fresh: it may be a replay.
// Respond refuses it (ErrStale, before any answer is computed) unless its
// stamp is above after, the largest stamp accepted from the peer so far;
// the caller then records the returned stamp as the new largest (durably,
// so that a restart does not forget it) before it uses the channel. A
// caller that cannot vouch for after (it kept no record) must keep the
// channel pending until a transport datagram authenticates under it.
func Respond(now time.Time, k Keys, msg []byte, after uint64, cfg ChannelConfig) (*Channel, []byte, uint64, error) {
	if len(msg) != InitSize || msg[0] != MsgInit {
		return nil, nil, 0, ErrShort
	}
	hs, err := newHandshake(k, false)
	if err != nil {
		return nil, nil, 0, err
	}
	p, _, _, err := hs.ReadMessage(nil, msg[1:])
	if err != nil || len(p) != StampSize {
		return nil, nil, 0, ErrAuth
	}
	stamp := binary.BigEndian.Uint64(p)
	if stamp <= after {
		return nil, nil, stamp, ErrStale
	}
	resp, cs1, cs2, err := hs.WriteMessage([]byte{MsgResp}, nil)
	if err != nil || cs1 == nil {
		return nil, nil, 0, fmt.Errorf("dgram: handshake: %v", err)
	}
	return newChannel(now, cfg, cs2.UnsafeKey(), cs1.UnsafeKey()), resp, stamp, nil
}

func newHandshake(k Keys, initiator bool) (*noise.HandshakeState, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   suite,
		Random:        rand.Reader,
		Pattern:       noise.HandshakeKK,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: k.Static,
		PeerStatic:    k.Peer,
	})
	if err != nil {
		return nil, fmt.Errorf("dgram: handshake: %w", err)
	}
	return hs, nil
}

// ChannelStats count a channel's datagrams.
type ChannelStats struct {
	Sealed, Opened uint64
	Replayed       uint64 // rejected: already received, or older than the replay window
	Forged         uint64 // rejected: failed authentication
	Truncated      uint64 // rejected: too short or malformed header
	Rekeys         uint64 // send key changes
	PeerRekeys     uint64 // receive key changes
}

// Channel is the transport phase of one Noise session: ChaCha20-Poly1305
// per datagram with the packet number as explicit nonce, a replay window,
// and in-band rekeying tagged by the key phase bit. It is a pure state
// machine (time is passed in) and not safe for concurrent use.
type Channel struct {
	cfg ChannelConfig

	sendKey       [32]byte
	send          noise.Cipher
	sendPhase     byte
	sendFirst     uint64 // first packet number sealed under the current send key
	sendAt        time.Time
	sendCount     uint64
	sendConfirmed bool // the peer acknowledged a datagram of the current phase

	recvKey   [32]byte
	recv      noise.Cipher
	recvPhase byte
	recvFirst uint64       // lowest packet number opened under the current receive key
	prev      noise.Cipher // previous receive key (nil: erased)
	prevUntil time.Time

	have    bool
	largest uint64
	seen    []uint64 // bitmap of the window, indexed by packet number modulo its size

	Stats ChannelStats
}

func newChannel(now time.Time, cfg ChannelConfig, sendKey, recvKey [32]byte) *Channel {
	cfg.populate()
	return &Channel{cfg: cfg, sendKey: sendKey, send: suite.Cipher(sendKey), sendAt: now,
		recvKey: recvKey, recv: suite.Cipher(recvKey), seen: make([]uint64, cfg.Window/64)}
}

// nextKey is Noise's REKEY: the first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros).
func nextKey(k [32]byte) [32]byte {
	var zeros [32]byte
	out := suite.Cipher(k).Encrypt(nil, math.MaxUint64, nil, zeros[:])
	var n [32]byte
	copy(n[:], out[:32])
	return n
}

// Largest returns the largest packet number opened (false: none yet).
func (c *Channel) Largest() (uint64, bool) { return c.largest, c.have }

// Acked tells the channel that the peer acknowledged packet number pn: once
// a datagram of the current send phase is acknowledged, the peer has its
// key and the next rekey may flip the phase bit again.
func (c *Channel) Acked(pn uint64) {
	if pn >= c.sendFirst {
		c.sendConfirmed = true
	}
}

// Seal returns the datagram for plaintext with the ARQ's flags (FlagAck…)
// and packet number pn, written in pnLen (1 or 2) bytes. Packet numbers
// must increase; each is used once. It rekeys first when the key is due.
func (c *Channel) Seal(now time.Time, flags byte, pn uint64, pnLen int, plain []byte) []byte {
	if c.sendConfirmed && (now.Sub(c.sendAt) >= c.cfg.RekeyInterval || c.sendCount >= c.cfg.RekeyDatagrams) {
		c.sendKey = nextKey(c.sendKey)
		c.send = suite.Cipher(c.sendKey)
		c.sendPhase ^= 1
		c.sendFirst, c.sendAt, c.sendCount, c.sendConfirmed = pn, now, 0, false
		c.Stats.Rekeys++
	}
	b0 := flags & flagsARQ
	if c.sendPhase != 0 {
		b0 |= flagPhase
	}
	hdr := make([]byte, 1, 1+2+len(plain)+TagSize)
	if pnLen == 2 {
		b0 |= flagPN2
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(pn))
	} else {
		hdr = append(hdr, byte(pn))
	}
	hdr[0] = b0
	c.sendCount++
	c.Stats.Sealed++
	return c.send.Encrypt(hdr, pn, hdr, plain)
}

// Open authenticates and decrypts a transport datagram: its packet number,
// ARQ flags and plaintext. Rejected datagrams are counted; the channel's
// state changes only for authentic ones.
func (c *Channel) Open(now time.Time, d []byte) (pn uint64, flags byte, plain []byte, err error) {
	if len(d) < 2 || d[0]&kindHandshake != 0 {
		c.Stats.Truncated++
		return 0, 0, nil, ErrShort
	}
	n := 1
	if d[0]&flagPN2 != 0 {
		n = 2
	}
	if len(d) < 1+n+TagSize {
		c.Stats.Truncated++
		return 0, 0, nil, ErrShort
	}
	var trunc uint64
	if n == 2 {
		trunc = uint64(binary.BigEndian.Uint16(d[1:3]))
	} else {
		trunc = uint64(d[1])
	}
	expect := uint64(0)
	if c.have {
		expect = c.largest + 1
	}
	pn = DecodeTruncated(expect, trunc, 8*n)
	if !c.fresh(pn) {
		c.Stats.Replayed++
		return 0, 0, nil, ErrReplay
	}
	if c.prev != nil && now.After(c.prevUntil) {
		c.prev = nil
	}
	hdr, ct := d[:1+n], d[1+n:]
	phase := byte(0)
	if d[0]&flagPhase != 0 {
		phase = 1
	}
	switch {
	case phase == c.recvPhase:
		plain, err = c.recv.Decrypt(nil, pn, hdr, ct)
	case c.prev != nil && pn < c.recvFirst:
		plain, err = c.prev.Decrypt(nil, pn, hdr, ct)
	default:
		// The peer's next key: commit only if it authenticates.
		nk := nextKey(c.recvKey)
		nc := suite.Cipher(nk)
		if plain, err = nc.Decrypt(nil, pn, hdr, ct); err == nil {
			c.prev, c.prevUntil = c.recv, now.Add(c.cfg.KeepPrevious)
			c.recvKey, c.recv, c.recvPhase, c.recvFirst = nk, nc, phase, pn
			c.Stats.PeerRekeys++
		}
	}
	if err != nil {
		c.Stats.Forged++
		return 0, 0, nil, ErrAuth
	}
	if phase == c.recvPhase && pn < c.recvFirst {
		c.recvFirst = pn
	}
	c.mark(pn)
	c.Stats.Opened++
	return pn, d[0] & flagsARQ, plain, nil
}

// fresh reports whether pn is inside the window and not yet received.
func (c *Channel) fresh(pn uint64) bool {
	if !c.have || pn > c.largest {
		return true
	}
	w := uint64(len(c.seen) * 64)
	if c.largest-pn >= w {
		return false
	}
	i := pn % w
	return c.seen[i/64]&(1<<(i%64)) == 0
}

func (c *Channel) mark(pn uint64) {
	w := uint64(len(c.seen) * 64)
	if !c.have || pn > c.largest {
		from := uint64(0)
		if c.have {
			from = c.largest + 1
		}
		if pn-from >= w || !c.have {
			clear(c.seen)
		} else {
			for q := from; q < pn; q++ {
				i := q % w
				c.seen[i/64] &^= 1 << (i % 64)
			}
		}
		c.largest, c.have = pn, true
	}
	i := pn % w
	c.seen[i/64] |= 1 << (i % 64)
}

// DecodeTruncated returns the number closest to expect whose low bits are
// trunc (RFC 9000 §A.3).
func DecodeTruncated(expect, trunc uint64, bits int) uint64 {
	win := uint64(1) << bits
	hwin, mask := win/2, win-1
	cand := (expect &^ mask) | trunc
	switch {
	case cand+hwin <= expect && cand < math.MaxUint64-win:
		cand += win
	case cand > expect+hwin && cand >= win:
		cand -= win
	}
	return cand
}

// IsHandshake reports whether d is a handshake datagram of kind typ.
func IsHandshake(d []byte, typ byte) bool { return len(d) > 0 && d[0] == typ }

// SameMsg reports whether two handshake messages are the same bytes (a
// retransmitted MsgInit is answered with the same MsgResp).
func SameMsg(a, b []byte) bool { return bytes.Equal(a, b) }
