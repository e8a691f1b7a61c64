// kiln/bench/peer.h — an implementation set up for one layer, and the registry of peers.
//
// kiln and each peer library turn a Layer plus its boundary data (NCHW input and [k, c/g, r, s]
// weight, or row-major X and W) into a LayerRun: buffers allocated and weights in the
// implementation's own layout, so that run() is exactly the call that is timed. A peer file
// (peers_onednn.cpp, peers_openblas.cpp) registers itself with KILN_REGISTER_PEER and is only
// compiled when CMake found its library.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/layer.h"
#include "core/op.h"

namespace kiln::bench {

class LayerRun {
  public:
    virtual ~LayerRun() = default;
    virtual void run() = 0;  // the timed call
    // Seconds per call, by measure.h's protocol. An implementation that runs in another
    // process times itself there and reports the result.
    virtual double measure(double min_time);
    // The output as the boundary tensor (NCHW / row-major), for the correctness check. Not timed.
    virtual void read_output(float* out) = 0;
    std::string detail;  // what the implementation chose, e.g. oneDNN's kernel name
    // Seconds the peer spent choosing its schedule (Peer::setup_label()); < 0 when none.
    double setup_seconds = -1.0;
    std::string schedule;  // the schedule a peer generated, as source text; "" for none
};

class Peer {
  public:
    virtual ~Peer() = default;
    virtual std::string name() const = 0;     // column header: "oneDNN"
    virtual int column() const = 0;           // columns are ordered by this
    virtual std::string version() const = 0;  // library version (and build), for the report
    // Variables the library reads when it is loaded, before main() runs. The bench sets those
    // the user has not set and starts itself again, so they are in place from the start.
    virtual std::vector<std::pair<std::string, std::string>> environment() const { return {}; }
    // Header of an extra column with LayerRun::setup_seconds ("autoschedule s"); "" for none.
    virtual std::string setup_label() const { return ""; }
    // The library's thread pool size; called once before any layer.
    virtual void set_threads(int n) const = 0;
    // nullptr with `why` filled when the peer does not run this kind of layer; throws when it
    // should have run it and failed (the table then shows the reason).
    virtual std::unique_ptr<LayerRun> prepare(const Layer& l, const float* input,
                                              const float* weight, std::string* why) const = 0;
};

std::vector<const Peer*> peers();  // ordered by column()

struct PeerRegistration {
    explicit PeerRegistration(std::unique_ptr<Peer> peer);
};

#define KILN_REGISTER_PEER(Type)                                                \
    static ::kiln::bench::PeerRegistration KILN_CONCAT(kiln_peer_registration_, \
                                                       __LINE__)(std::make_unique<Type>())

}  // namespace kiln::bench
