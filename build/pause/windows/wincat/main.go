// wincat relays its standard input to a TCP address and what the address sends back to
// its standard output. kubelet's port-forward runs it inside Windows pods (as
// C:\Windows\System32\wincat.exe), where no netcat exists.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wincat <host> <port>")
		os.Exit(2)
	}
	addr := net.JoinHostPort(os.Args[1], os.Args[2])
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wincat: cannot connect to %s: %v\n", addr, err)
		os.Exit(1)
	}
	tcp := conn.(*net.TCPConn)
	defer tcp.Close()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := io.Copy(os.Stdout, tcp); err != nil {
			fmt.Fprintf(os.Stderr, "wincat: copying to stdout: %v\n", err)
		}
		// The far end is done: nothing more will be written, so stop reading stdin too.
		os.Stdout.Close()
		os.Stdin.Close()
		tcp.CloseRead()
	}()
	go func() {
		defer wg.Done()
		if _, err := io.Copy(tcp, os.Stdin); err != nil {
			fmt.Fprintf(os.Stderr, "wincat: copying from stdin: %v\n", err)
		}
		// End of stdin becomes a half-close, so the far end sees EOF and can answer.
		tcp.CloseWrite()
	}()
	wg.Wait()
}
