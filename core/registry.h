// kiln/core/registry.h — a named registry filled by static registrations.
//
// Ops, schedule spaces (and later search strategies and backends) register themselves next to
// their definitions; lookups of an unknown name list the known ones.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace kiln {

template <class T>
class Registry {
  public:
    void add(const std::string& name, std::unique_ptr<T> item) { items_[name] = std::move(item); }

    // Throws kiln::Error(field, "<what> '<name>' ... (known: a, b)").
    const T& find(const std::string& name, const std::string& field,
                  const std::string& what) const {
        auto it = items_.find(name);
        if (it != items_.end()) return *it->second;
        throw Error(field, what + " '" + name + "' (known: " + names() + ")");
    }

    std::vector<const T*> all() const {  // sorted by name
        std::vector<const T*> out;
        for (const auto& [n, item] : items_)
            out.push_back(item.get());
        return out;
    }

    std::string names() const {
        std::string s;
        for (const auto& [n, item] : items_)
            s += (s.empty() ? "" : ", ") + n;
        return s;
    }

  private:
    std::map<std::string, std::unique_ptr<T>> items_;
};

}  // namespace kiln
