#pragma once
// The greedy texts ../shared/data/README.md gives for stories260K.gguf (CPU and CUDA tests).

namespace lumen::test {

// From ../shared/data/README.md: greedy, BOS then no prompt, 200 tokens.
inline const char* kStory =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red "
    "ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and "
    "didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and didn't know "
    "what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\nLily didn't want to help her mom, so she";
// Prompt "Zoo", greedy, 60 tokens (the text includes the prompt). The README's counts are
// llama2.c "steps": forward passes over prompt and reply, so replies hold steps - prompt + 1
// tokens (200 for the BOS-only story, 57 for "Zoo", whose prompt is 4 tokens with BOS).
inline const char* kZoo =
    "Zoo was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to "
    "play with it, but she didn't want to play with";

}  // namespace lumen::test
