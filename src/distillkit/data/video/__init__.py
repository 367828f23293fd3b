"""Video classification data: annotation formats (one module each in `formats/`), frame readers, TSN sampling, clip
transforms, the dataset."""

from distillkit.data.video.annotations import (
    FORMATS,
    AnnotationFormat,
    VideoRecord,
    convert,
    format_names,
    get_format,
    register_format,
    write_list,
)
from distillkit.data.video.dataset import VideoDataset
from distillkit.data.video.decode import PyAVReader, RawFramesReader, VideoReader, open_video
from distillkit.data.video.formats.hmdb51 import hmdb51_classes, parse_hmdb51
from distillkit.data.video.formats.kinetics import kinetics_classes, parse_kinetics_csv
from distillkit.data.video.formats.list_file import parse_list_file
from distillkit.data.video.formats.rawframes import parse_rawframe_list
from distillkit.data.video.formats.ssv2 import parse_ssv2, ssv2_classes
from distillkit.data.video.formats.ucf101 import parse_ucf101, ucf101_classes
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
    "FORMATS",
    "AnnotationFormat",
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
    "format_names",
    "get_format",
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
    "register_format",
    "segment_indices",
    "ssv2_classes",
    "ucf101_classes",
    "write_list",
]
