// Hugging Face interop for Mamba-1 language models: the MambaForCausalLM folder
// (config.json, model.safetensors or shards with model.safetensors.index.json, tokenizer.json)
// to and from our checkpoints.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "layers/mamba_config.h"
#include "layers/module.h"

namespace serpent {

// Every parameter MambaLM(cfg) has, by Hugging Face name, in the model's own order.
std::vector<std::pair<std::string, Shape>> mamba_parameter_shapes(const MambaConfig& cfg);

// config.json of MambaForCausalLM for cfg (vocab_size padded); eos_token_id is used for the
// bos, eos and pad ids.
nlohmann::ordered_json hf_config_json(const MambaConfig& cfg, int64_t eos_token_id = 0);

// Reads a config.json: transformers' MambaConfig ("model_type": "mamba") or the reference
// implementation's own (d_model, n_layer, ssm_cfg, ...). Unsupported settings (Mamba-2, LayerNorm,
// linear biases, another activation, untied embeddings) throw serpent::Error naming the field.
// *untied is set when the file unties the embeddings, which is acceptable only when lm_head.weight
// turns out equal to the embedding (read_hf_dir checks).
MambaConfig mamba_config_from_hf(const nlohmann::json& j, const std::string& source, bool* untied = nullptr);

// A Hugging Face folder read into memory: its config and every parameter as f32 under our names.
struct HfModel {
  MambaConfig config;
  NamedTensors tensors;  // in mamba_parameter_shapes order
};
HfModel read_hf_dir(const std::string& dir);

// Writes config.json and model.safetensors (f32, lm_head omitted: it is tied) for a model whose
// tensors match mamba_parameter_shapes(cfg) (checked; errors name `source`).
void write_hf_dir(const std::string& dir, const MambaConfig& cfg, const NamedTensors& model, const std::string& source,
                  int64_t eos_token_id = 0);

// The commands' work. export_hf copies the tokenizer named by `tokenizer` ("" = the config's
// data.tokenizer; "none" = write none; "byte" = the byte tokenizer, which has no tokenizer.json)
// and returns human-readable notes on what it did about the tokenizer.
std::vector<std::string> export_hf(const std::string& checkpoint, const std::string& out_dir,
                                   const std::string& tokenizer = "");
void import_hf(const std::string& in_dir, const std::string& out_checkpoint);

}  // namespace serpent
