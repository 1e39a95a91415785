"""Tokenizer helpers of ASR recipes (upstream's ``espnet3.systems.asr.tokenizers``)."""
