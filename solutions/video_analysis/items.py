"""What is stored about a video: one record per sampled frame, the video's own fields on each.

A video becomes the sampled frames of its collection (1 per second by default, plus the
first frame of every shot). Each frame is an item with the image encoder's vector, its time
span and its shot; the frame that starts the video has the video's id and carries its files
(the original, and a browser-playable copy when the original is not). Each shot's keyframe
(the frame nearest its middle) carries the shot's words for full-text search: ImageNet
labels of the shot (``tags``) and on-screen text (``text``). The faces found on sampled
frames are items of the collection's ``faces`` companion (``people.py``).
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text

from common import Column, Record

MAX_NAME = 255


class FrameRecord(Record):
    """One sampled frame of a video, with what a result shows of its video."""

    video: Annotated[int, Column(BigInteger(), filter="int64", index=True)]
    video_name: Annotated[str, Column(String(MAX_NAME))]
    frame: Annotated[int, Column(Integer(), index=True)] = Field(
        description="0, 1, 2 ... in time order (0: the frame that carries the video's files)."
    )
    time: Annotated[float, Column(Float())] = Field(description="Seconds from the start.")
    until: Annotated[float, Column(Float())] = Field(description="When the next sample starts.")
    shot: Annotated[int, Column(Integer())]
    shot_start: Annotated[float, Column(Float())]
    shot_end: Annotated[float, Column(Float())]
    keyframe: Annotated[bool, Column(Boolean())] = Field(description="Its shot's keyframe.")
    tags: Annotated[str, Column(Text(), fulltext=True)] = Field(
        "", description="The shot's ImageNet labels, on its keyframe."
    )
    text: Annotated[str, Column(Text(), fulltext=True)] = Field(
        "", description="On-screen text read in the shot, on its keyframe."
    )
    duration: Annotated[float, Column(Float())]
    width: Annotated[int, Column(Integer())]
    height: Annotated[int, Column(Integer())]
    fps: Annotated[float, Column(Float())]
    codec: Annotated[str, Column(String(40))]
    media_type: Annotated[str, Column(String(40))]
    playable: Annotated[bool, Column(Boolean())] = Field(
        description="Browsers play the original; otherwise the video has a playable copy."
    )
    size_bytes: Annotated[int, Column(BigInteger())]


class VideoOptions(BaseModel):
    """What a video collection chooses when it is created."""

    model_config = ConfigDict(extra="forbid")

    frame_interval: float = Field(
        1.0,
        ge=0.1,
        le=60.0,
        description="Seconds between sampled frames (besides the first frame of every shot).",
    )
    tags: bool = Field(True, description="Label each shot with ImageNet classes (cheap).")
    ocr: bool = Field(
        True,
        description="Read the on-screen text of each shot's keyframe (about 1 s per shot on "
        "two cores).",
    )
    faces: bool = Field(
        True,
        description="Find and describe the faces on every sampled frame, for people search "
        "(see the README for what it costs).",
    )
