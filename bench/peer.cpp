// kiln/bench/peer.cpp — the registry of peer libraries.
#include "bench/peer.h"

#include <algorithm>

#include "bench/measure.h"

namespace kiln::bench {
namespace {
std::vector<std::unique_ptr<Peer>>& registry() {
    static std::vector<std::unique_ptr<Peer>> all;
    return all;
}
}  // namespace

double LayerRun::measure(double min_time) {
    return time_per_call(*this, min_time);
}

PeerRegistration::PeerRegistration(std::unique_ptr<Peer> peer) {
    registry().push_back(std::move(peer));
}

std::vector<const Peer*> peers() {
    std::vector<const Peer*> out;
    for (const auto& p : registry())
        out.push_back(p.get());
    std::sort(out.begin(), out.end(),
              [](const Peer* a, const Peer* b) { return a->column() < b->column(); });
    return out;
}

}  // namespace kiln::bench
