// TLS echo server: Go crypto/tls, one goroutine per connection, Read/Write
// loop with a 64 KiB buffer (the same loop as echo/go.go). Run with
// GOMAXPROCS=1.
// usage: tls_go PORT CERTFILE KEYFILE
package main

import (
	"crypto/tls"
	"net"
	"os"
)

func main() {
	cert, err := tls.LoadX509KeyPair(os.Args[2], os.Args[3])
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		panic(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			c.(*net.TCPConn).SetNoDelay(true)
			t := tls.Server(c, cfg)
			buf := make([]byte, 65536)
			for {
				n, err := t.Read(buf)
				if err != nil {
					break
				}
				if _, err := t.Write(buf[:n]); err != nil {
					break
				}
			}
			t.Close()
		}(c)
	}
}
