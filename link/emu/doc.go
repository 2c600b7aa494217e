// Package emu emulates slow, lossy, intermittent links in userspace, since
// the kernels isthmus is tested on have no netem. It runs in-process (tests,
// `isthmus demo`) and as a relay (`isthmus linkemu`).
//
// # Model
//
// A Link has two directions, A→B and B→A, each with its own serializer
// (full duplex, like a radio pair on two frequencies). A unit of n bytes
// offered at time t starts serializing at max(t, when the serializer is
// free), occupies it for n*8/RateBPS, and arrives Delay later.
//
//   - Streams (Pipe, Dial/Listen): writes are cut into segments of at most
//     MTU bytes. A stream is reliable, as TCP over the radio would be: a
//     segment lost on the air occupies the serializer again and arrives one
//     retransmission timeout, max(200ms, 4×Delay), later; order is kept.
//     Each direction of a conn accepts StreamWindow bytes written and not
//     yet read by the peer, then Write blocks. Dial takes one round trip.
//   - Datagrams (PacketPipe, WrapPacketConn): each write is one packet, lost
//     with probability Loss, dropped if larger than the MTU or if the
//     transmit queue is full (SetPacketQueue), lost during an outage.
//   - Headers (SetHeaders, off by default): IP headers occupy the
//     serializer too: 52 bytes per stream segment (IPv4, TCP, timestamps),
//     a 52-byte pure ACK on the other direction per two segments received,
//     SYN/SYN-ACK/ACK per Dial, 28 bytes per datagram (IPv4, UDP).
//     Stats.AirBytes counts everything that occupied the serializer.
//   - Losses are independent when BurstLen ≤ 1, otherwise drawn from a
//     two-state Gilbert-Elliott chain with mean burst BurstLen and the same
//     mean rate. Each direction has its own generator seeded from the seed.
//   - Outages (random per OutageEvery/OutageLen, or forced by Down) deliver
//     nothing. In Reset mode (default) they reset every stream conn with
//     ErrLinkDown and Dial fails until they end; in Stall mode stream data
//     waits (segments already in flight are held, new ones serialize after
//     the outage) and Dial waits.
//   - LinkState reports whether an outage is in progress and when that
//     changes, as a modem's carrier detect would; PacketPipe's ends offer
//     it to the datagram transport (link.LinkStater), which probes at once
//     when the link returns.
//
// Time is read with time.Now and timers only, so tests run the emulator in
// virtual time under testing/synctest. Each direction has one goroutine that
// delivers arrivals in order; Close stops it and every conn.
//
// # Profiles
//
//	name           rate        one-way delay  loss              outages                    source
//	hf-2400        2400 bit/s  3 s            0 (ARQ residual)  every 5-30 min, 30 s-10 min  MIL-STD-188-110 modem + STANAG 5066 ARQ
//	uhf-dama-2400  2400 bit/s  1 s            1%                none                       DAMA UHF SATCOM, MIL-STD-188-181/182
//	iridium-2400   2400 bit/s  750 ms         1%                none                       Iridium circuit data / SBD / Certus 2.4 kbit/s
//	vhf-9600       9600 bit/s  50 ms          0.5%              none                       AX.25 on VHF, 9600 baud G3RUH modems
//	bgan-64k       64 kbit/s   350 ms         0.5%              none                       Inmarsat BGAN streaming IP 64k
//	geo-1m         1 Mbit/s    300 ms         0.5%, bursts of 4 none                       GEO VSAT (DVB-S2/RCS2 class)
//	lan            unlimited   0              0                 none                       no emulation
//
// ParseProfile takes a name and overrides, e.g.
// "vhf-9600,rate=4800,delay=200ms,loss=0.02,outage=20s-40s/5s-15s,mtu=576".
//
// # Relays
//
// RelayTCP and RelayUDP (and the Relay type, which also logs and reports
// Stats) forward real sockets through one Link: all connections of a relay
// share its two serializers, as they would share one radio.
package emu
