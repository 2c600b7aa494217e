package compare

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a tiny authoritative DNS server on loopback UDP that answers SRV
// queries for _xmpp-server._tcp.DOMAIN with target "localhost." (which
// libc resolves from /etc/hosts, as ejabberd resolves SRV targets with
// getaddrinfo) and a configured port. Every other query gets an empty
// NXDOMAIN answer at once (ejabberd retries slow lookups). It echoes RD
// and sets RA, as Erlang's resolver expects from a recursive server.
type DNS struct {
	conn *net.UDPConn

	mu  sync.Mutex
	srv map[string]uint16 // lower-case domain -> port
	wg  sync.WaitGroup
}

// StartDNS listens on 127.0.0.1 on a free UDP port.
func StartDNS() (*DNS, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("compare: dns: %w", err)
	}
	d := &DNS{conn: c, srv: map[string]uint16{}}
	d.wg.Add(1)
	go d.serve()
	return d, nil
}

// Port is the UDP port the server listens on.
func (d *DNS) Port() int { return d.conn.LocalAddr().(*net.UDPAddr).Port }

// SetSRV makes _xmpp-server._tcp.domain point at localhost:port.
func (d *DNS) SetSRV(domain string, port int) {
	d.mu.Lock()
	d.srv[strings.ToLower(strings.TrimSuffix(domain, "."))] = uint16(port)
	d.mu.Unlock()
}

// Close stops the server.
func (d *DNS) Close() error {
	err := d.conn.Close()
	d.wg.Wait()
	return err
}

func (d *DNS) serve() {
	defer d.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out, err := d.answer(buf[:n]); err == nil {
			_, _ = d.conn.WriteToUDP(out, from)
		}
	}
}

const srvPrefix = "_xmpp-server._tcp."

func (d *DNS) answer(q []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, err
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return nil, errors.New("want one question")
	}
	question := qs[0]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: dnsmessage.RCodeNameError}
	name := strings.ToLower(strings.TrimSuffix(question.Name.String(), "."))
	var port uint16
	found := false
	if question.Type == dnsmessage.TypeSRV && question.Class == dnsmessage.ClassINET && strings.HasPrefix(name, srvPrefix) {
		d.mu.Lock()
		port, found = d.srv[strings.TrimPrefix(name, srvPrefix)]
		d.mu.Unlock()
	}
	if found {
		rh.RCode = dnsmessage.RCodeSuccess
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(question); err != nil {
		return nil, err
	}
	if found {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		target, err := dnsmessage.NewName("localhost.")
		if err != nil {
			return nil, err
		}
		err = b.SRVResource(dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 5},
			dnsmessage.SRVResource{Priority: 0, Weight: 0, Port: port, Target: target})
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
