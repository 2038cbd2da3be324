// Replaces libzmq 4.3.4's src/config.hpp when zmq-sys builds its vendored
// libzmq (forced in with `-include` from .cargo/config.toml; the include
// guard below makes libzmq's own copy a no-op).
//
// Why: the master keeps one connection per build slave, and libzmq gives
// every connection two message pipes whose queues grow in chunks of
// `message_pipe_granularity` messages of 64 bytes each, keeping a spare
// chunk per pipe. At libzmq's 256 that is up to 64 KiB per slave whatever
// the traffic; a slave has at most a few multipart messages in flight, so
// 32 messages a chunk (2 KiB) loses nothing measurable and saves about
// 56 KiB per connection (see BENCHMARKS.md: the 100-slave RSS).
//
// Every other value is libzmq 4.3.4's. If zmq-sys moves to a libzmq whose
// config.hpp has more names, the build fails loudly here: compare with the
// new file and add them. After editing this file run
// `cargo clean -p zeromq-src -p zmq-sys` (cargo does not watch it).

#ifndef __ZMQ_CONFIG_HPP_INCLUDED__
#define __ZMQ_CONFIG_HPP_INCLUDED__

namespace zmq
{
enum
{
    message_pipe_granularity = 32,
    command_pipe_granularity = 16,
    inbound_poll_rate = 100,
    max_wm_delta = 1024,
    max_io_events = 256,
    proxy_burst_size = 1000,
    max_command_delay = 3000000,
    clock_precision = 1000000,
    signaler_port = 0
};
}

// Lets piwheels' tests check that this file, not libzmq's, was used.
extern "C" __attribute__ ((weak, visibility ("default"))) const int
  piwheels_zmq_message_pipe_granularity = zmq::message_pipe_granularity;

#endif
