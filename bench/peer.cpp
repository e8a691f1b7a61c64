// kiln/bench/peer.cpp — the registry of peer libraries.
#include "bench/peer.h"

#include <algorithm>

namespace kiln::bench {
namespace {
std::vector<std::unique_ptr<Peer>>& registry() {
    static std::vector<std::unique_ptr<Peer>> all;
    return all;
}
}  // namespace

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
