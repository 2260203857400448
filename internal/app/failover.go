package app

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/redis/go-redis/v9"
)

// reloadOnNetError makes a ClusterClient re-read the slot map when a node
// stops answering. go-redis re-reads it on MOVED and otherwise only every
// ClusterStateReloadInterval (a minute): after a master dies and its
// replica is promoted, every command for the dead master's slots is still
// sent to its address, fails to connect and never meets the MOVED that
// would teach the client the new master. Reloads are coalesced by
// go-redis (one at a time, 200 ms apart), so a storm of errors costs a
// few CLUSTER SLOTS.
type reloadOnNetError struct{ cc *redis.ClusterClient }

func (h reloadOnNetError) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.cc.ReloadState(ctx)
		}
		return c, err
	}
}

func (h reloadOnNetError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

// check reloads on a connection failure or a cluster that is down; a
// Redis error about the command (a script error, a wrong type) or a
// cancelled request says nothing about the topology.
func (h reloadOnNetError) check(ctx context.Context, err error) {
	var netErr net.Error
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		redis.HasErrorPrefix(err, "CLUSTERDOWN"), redis.HasErrorPrefix(err, "READONLY"):
		h.cc.ReloadState(ctx)
	}
}
