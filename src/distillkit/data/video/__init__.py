"""Video classification data: annotation parsers, frame readers, TSN sampling, clip transforms, the dataset."""

from distillkit.data.video.annotations import (
    VideoRecord,
    convert,
    hmdb51_classes,
    kinetics_classes,
    parse_hmdb51,
    parse_kinetics_csv,
    parse_list_file,
    parse_rawframe_list,
    parse_ssv2,
    parse_ucf101,
    ssv2_classes,
    ucf101_classes,
    write_list,
)
from distillkit.data.video.dataset import VideoDataset
from distillkit.data.video.decode import PyAVReader, RawFramesReader, VideoReader, open_video
from distillkit.data.video.sampling import segment_indices
from distillkit.data.video.transforms import (
    CenterCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    clip_to_tensor,
    left_right_label_map,
)

__all__ = [
    "CenterCrop",
    "Compose",
    "MultiScaleCrop",
    "Normalize",
    "PyAVReader",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RawFramesReader",
    "Resize",
    "VideoDataset",
    "VideoReader",
    "VideoRecord",
    "clip_to_tensor",
    "convert",
    "hmdb51_classes",
    "kinetics_classes",
    "left_right_label_map",
    "open_video",
    "parse_hmdb51",
    "parse_kinetics_csv",
    "parse_list_file",
    "parse_rawframe_list",
    "parse_ssv2",
    "parse_ucf101",
    "segment_indices",
    "ssv2_classes",
    "ucf101_classes",
    "write_list",
]
