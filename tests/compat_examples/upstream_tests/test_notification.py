#!/usr/bin/env python
# ___INFO__MARK_BEGIN__
#######################################################################################
# Copyright 2008-2022 Altair Engineering Inc.
# Licensed under the Apache License, Version 2.0 (the "License"); you may not
# use this file except in compliance with the License.
#
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
#
# See the License for the specific language governing permissions and
# limitations under the License.
#######################################################################################
# ___INFO__MARK_END__

# pydrmaa2 port: nose's SkipTest is unittest's (nose is not installed, and no longer runs on
# Python 3.10+); pytest skips on it as nose did.
from unittest import SkipTest
from pydrmaa2.drmaa2 import Notification
from pydrmaa2.drmaa2 import UnsupportedOperation


def test_register_event_callback():
    def callback(notification):
        print('Got notification: %s' % notification)

    try:
        Notification.register_event_notification(callback)
        print('\nRegistered callback for event notification')
    except UnsupportedOperation:
        raise SkipTest('Not yet implemented optional feature.')
