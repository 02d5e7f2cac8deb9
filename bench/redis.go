package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// redisServer is a redis-server child started by the harness.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startRedis starts `redis-server` on a free loopback port with persistence
// off, in dir, and waits until it answers PING.
func startRedis(ctx context.Context, bin, dir string) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: redis port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	rs := &redisServer{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := pingRedis(rs.addr); err == nil {
			return rs, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			rs.stop()
			return nil, fmt.Errorf("bench: redis-server on %s did not answer PING: %w", rs.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingRedis sends one PING in the inline protocol.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// url is the redis:// URL of the server.
func (rs *redisServer) url() string { return "redis://" + rs.addr + "/0" }

// stop kills the server and waits for it.
func (rs *redisServer) stop() {
	_ = rs.cmd.Process.Signal(os.Kill)
	_ = rs.cmd.Wait()
}
