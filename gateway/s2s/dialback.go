package s2s

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
)

// DialbackKey computes the XEP-0185 dialback key:
// hex(HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " + streamID)).
func DialbackKey(secret, receiving, originating, streamID string) string {
	s := sha256.Sum256([]byte(secret))
	m := hmac.New(sha256.New, []byte(hex.EncodeToString(s[:])))
	m.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// checkKey compares a received key with the expected one in constant time.
func checkKey(secret, receiving, originating, streamID, key string) bool {
	want := DialbackKey(secret, receiving, originating, streamID)
	return hmac.Equal([]byte(want), []byte(key))
}

// newStreamID returns a random stream id.
func newStreamID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// streamHeader serializes a stream header. id is omitted when empty.
func streamHeader(from, to, id string) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'")
	if from != "" {
		writeAttr(&b, "from", from)
	}
	if to != "" {
		writeAttr(&b, "to", to)
	}
	b.WriteString(" version='1.0'")
	if id != "" {
		writeAttr(&b, "id", id)
	}
	b.WriteString(">")
	return b.Bytes()
}

// featuresXML returns the stream features a receiving server offers;
// required marks STARTTLS as mandatory-to-negotiate; external offers SASL
// EXTERNAL.
func featuresXML(tls, required, external bool) []byte {
	var b bytes.Buffer
	b.WriteString("<stream:features>")
	switch {
	case tls && required:
		b.WriteString("<starttls xmlns='" + NSTLS + "'><required/></starttls>")
	case tls:
		b.WriteString("<starttls xmlns='" + NSTLS + "'/>")
	}
	if external {
		b.WriteString("<mechanisms xmlns='" + NSSASL + "'><mechanism>EXTERNAL</mechanism></mechanisms>")
	}
	b.WriteString("<dialback xmlns='" + NSDBFeature + "'><errors/></dialback></stream:features>")
	return b.Bytes()
}

// streamErrorXML returns a stream error followed by the stream close tag.
func streamErrorXML(cond string) []byte {
	return []byte("<stream:error><" + cond + " xmlns='" + NSStreams + "'/></stream:error></stream:stream>")
}

const streamClose = "</stream:stream>"

// dbResult serializes a db:result; key for requests, typ for answers.
func dbResult(from, to, key, typ, errCond string) []byte {
	var b bytes.Buffer
	b.WriteString("<db:result")
	writeAttr(&b, "from", from)
	writeAttr(&b, "to", to)
	if typ != "" {
		writeAttr(&b, "type", typ)
	}
	switch {
	case errCond != "":
		b.WriteString("><error type='cancel'><" + errCond + " xmlns='" + NSStanzas + "'/></error></db:result>")
	case key != "":
		b.WriteString(">")
		_ = writeText(&b, key)
		b.WriteString("</db:result>")
	default:
		b.WriteString("/>")
	}
	return b.Bytes()
}

// dbVerify serializes a db:verify; key for requests, typ for answers.
func dbVerify(from, to, id, key, typ string) []byte {
	var b bytes.Buffer
	b.WriteString("<db:verify")
	writeAttr(&b, "from", from)
	writeAttr(&b, "to", to)
	writeAttr(&b, "id", id)
	if typ != "" {
		writeAttr(&b, "type", typ)
	}
	if key != "" {
		b.WriteString(">")
		_ = writeText(&b, key)
		b.WriteString("</db:verify>")
	} else {
		b.WriteString("/>")
	}
	return b.Bytes()
}

func writeText(b *bytes.Buffer, s string) error {
	return xml.EscapeText(b, []byte(s))
}
