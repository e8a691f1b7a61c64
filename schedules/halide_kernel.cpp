#include "schedules/halide_kernel.h"

#include <chrono>
#include <memory>

#include "core/error.h"
#include "generators/gemm.h"

namespace kiln {

Halide::Target halide_target(const Target& t) {
    Halide::Target ht(t.halide);
    if (t.is_host) ht = ht.with_feature(Halide::Target::JIT);
    return ht;
}

std::vector<int> halide_extents(const TensorSpec& spec) {
    return std::vector<int>(spec.shape.rbegin(), spec.shape.rend());
}

namespace {

// Points `buf` at `data` without copying; the kernel never writes its inputs.
void point_at(Halide::Buffer<float>& buf, const float* data) {
    buf.raw_buffer()->host = reinterpret_cast<uint8_t*>(const_cast<float*>(data));
}

class HalideKernel final : public Kernel {
  public:
    HalideKernel(const Workload& w, HalidePipelines p, const Target& t)
        : p_(std::move(p)), target_(halide_target(t)) {
        if (!t.is_host)
            throw Error("target", "kernels for '" + t.name +
                                      "' can be compiled ahead of time but not run on this host");
        auto specs = w.inputs();
        check_views(w);
        for (size_t i = 0; i < specs.size(); ++i)
            inputs_.emplace_back(nullptr, view(p_.input_views, i, specs[i]));
        output_ = Halide::Buffer<float>(
            nullptr, p_.output_view.empty() ? halide_extents(w.output()) : p_.output_view);
        if (p_.pack) packed_ = Halide::Buffer<float>(p_.packed_extents);
        if (!p_.output_crops.empty()) make_pieces();

        auto start = std::chrono::steady_clock::now();
        if (p_.pack) p_.pack->compile_jit(target_);
        p_.main.compile_jit(target_);
        compile_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        for (auto& b : p_.main_args)
            main_params_.set(b.param, b.input < 0 ? packed_ : inputs_.at(b.input));
        for (auto& b : p_.pack_args)
            pack_params_.set(b.param, inputs_.at(b.input));
    }

    void prepare(const std::vector<const float*>& inputs) override {
        bind(inputs);
        try {
            if (p_.pack) p_.pack->realize(packed_, target_, pack_params_);
        } catch (const Halide::Error& e) {
            throw Error("kernel", std::string("packing failed: ") + e.what());
        }
        prepared_ = true;
    }

    void run(const std::vector<const float*>& inputs, float* output) override {
        if (!prepared_) throw Error("kernel", "run() before prepare()");
        bind(inputs);
        output_.raw_buffer()->host = reinterpret_cast<uint8_t*>(output);
        try {
            if (!pieces_) {
                p_.main.realize(output_, target_, main_params_);
            } else {
                for (size_t i = 0; i < piece_offsets_.size(); ++i)
                    (*pieces_)[i].raw_buffer()->host =
                        reinterpret_cast<uint8_t*>(output + piece_offsets_[i]);
                p_.main.realize(*pieces_, target_, main_params_);
            }
        } catch (const Halide::Error& e) {
            throw Error("kernel", std::string("run failed: ") + e.what());
        }
    }

  private:
    // The output's crops (HalidePipelines::output_crops) as buffers made once: each run only
    // points them into the output, at their first element's offset.
    void make_pieces() {
        std::vector<Halide::Buffer<void>> pieces;
        for (const auto& crop : p_.output_crops) {
            std::vector<halide_dimension_t> dims(output_.raw_buffer()->dim,
                                                 output_.raw_buffer()->dim + output_.dimensions());
            ptrdiff_t offset = 0;
            for (size_t d = 0; d < crop.size() && d < dims.size(); ++d) {
                dims[d].min = crop[d].first;
                dims[d].extent = crop[d].second;
                offset += ptrdiff_t(crop[d].first) * dims[d].stride;
            }
            pieces.push_back(Halide::Buffer<float>(nullptr, int(dims.size()), dims.data()));
            piece_offsets_.push_back(offset);
        }
        pieces_ = std::make_unique<Halide::Realization>(pieces);
    }

    // A view must hold exactly the tensor's elements, or the kernel would read past it.
    void check_views(const Workload& w) const {
        auto count = [](const std::vector<int>& e) {
            int64_t n = 1;
            for (int d : e)
                n *= d;
            return n;
        };
        auto specs = w.inputs();
        for (size_t i = 0; i < p_.input_views.size() && i < specs.size(); ++i)
            if (!p_.input_views[i].empty() && count(p_.input_views[i]) != specs[i].numel())
                throw Error("kernel", "view of " + specs[i].name + " has the wrong element count");
        if (!p_.output_view.empty() && count(p_.output_view) != w.output().numel())
            throw Error("kernel", "view of the output has the wrong element count");
    }

    static std::vector<int> view(const std::vector<std::vector<int>>& views, size_t i,
                                 const TensorSpec& spec) {
        if (i < views.size() && !views[i].empty()) return views[i];
        return halide_extents(spec);
    }

    void bind(const std::vector<const float*>& inputs) {
        if (inputs.size() != inputs_.size())
            throw Error("kernel", "expected " + std::to_string(inputs_.size()) + " inputs, got " +
                                      std::to_string(inputs.size()));
        for (size_t i = 0; i < inputs.size(); ++i)
            point_at(inputs_[i], inputs[i]);
    }

    HalidePipelines p_;
    Halide::Target target_;
    std::vector<Halide::Buffer<float>> inputs_;
    Halide::Buffer<float> output_;
    Halide::Buffer<float> packed_;
    std::unique_ptr<Halide::Realization> pieces_;  // with output_crops: the crops of the output
    std::vector<ptrdiff_t> piece_offsets_;         // each crop's first element in the output
    Halide::ParamMap main_params_, pack_params_;
    bool prepared_ = false;
};

}  // namespace

std::unique_ptr<Kernel> make_halide_kernel(const Workload& w, HalidePipelines p, const Target& t) {
    return std::make_unique<HalideKernel>(w, std::move(p), t);
}

void bind_epilogue_args(HalidePipelines& p, const Workload& w, Halide::ImageParam bias,
                        Halide::ImageParam residual) {
    int next = 2;
    if (w.epilogue.bias) p.main_args.push_back({bias, next++});
    if (w.epilogue.residual) p.main_args.push_back({residual, next++});
}

void constrain_shapes(HalidePipelines& p, const Workload& w) {
    const auto specs = w.inputs();
    for (HalideBinding& b : p.main_args) {
        std::vector<int> extents;
        if (b.input < 0)
            extents = p.packed_extents;
        else if (size_t(b.input) < p.input_views.size() && !p.input_views[b.input].empty())
            extents = p.input_views[b.input];
        else
            extents = halide_extents(specs.at(b.input));
        if (int(extents.size()) == b.param.dimensions()) set_dense_shape(b.param, extents);
    }
    const std::vector<int> out = p.output_view.empty() ? halide_extents(w.output()) : p.output_view;
    const auto outputs = p.main.outputs();
    for (size_t i = 0; i < outputs.size(); ++i) {
        Halide::Func f = outputs[i];
        if (f.dimensions() != int(out.size())) continue;
        set_dense_shape(f.output_buffer(), out);
        if (i < p.output_crops.size())
            for (size_t d = 0; d < p.output_crops[i].size(); ++d)
                f.output_buffer().dim(int(d)).set_bounds(p.output_crops[i][d].first,
                                                         p.output_crops[i][d].second);
    }
}

HalidePipelines build_pipelines(const Workload& w, const Config& config, const Target& t) {
    w.validate();
    const auto* def = dynamic_cast<const HalideSpaceDef*>(&find_space(w.op));
    if (!def) throw Error("op", "the kernels of '" + w.op + "' are not Halide pipelines");
    ScheduleSpace space = def->space(w, t);
    if (auto why = space.check(config))
        throw Error("config", "invalid for " + w.key() + ": " + *why);
    return def->pipelines(w, config, t);
}

}  // namespace kiln
