/**
 * Demographic matching of XCPD / PDQ: Japanese names match on kanji or kana — never through a
 * transliteration — and the same text written differently (katakana / hiragana, half-width kana,
 * spacing) is the same name. What disagrees refuses the match.
 */
import { compareNames, demographicsMatch, foldText, type Demographics, type PersonName } from '@xcai/shared';
import { personName } from '../support/xcpd';

const n = personName;

const YAMADA: Demographics = {
  names: [n('Yamada', 'Tarou', 'ABC'), n('山田', '太郎', 'IDE'), n('やまだ', 'たろう', 'SYL')],
  gender: 'M',
  birthTime: '19650312',
  addresses: [{ streetAddressLine: ['架空町1-2-3'], city: 'さくら市', postalCode: '190-0001' }],
};

const query = (names: PersonName[], extra: Partial<Demographics> = {}): Demographics => ({
  names,
  gender: 'M',
  birthTime: '19650312',
  addresses: [],
  ...extra,
});

describe('names', () => {
  it('kanji alone, kana alone, or both match the record', () => {
    expect(compareNames([n('山田', '太郎', 'IDE')], YAMADA.names)).toBe('match');
    expect(compareNames([n('やまだ', 'たろう', 'SYL')], YAMADA.names)).toBe('match');
    expect(compareNames([n('山田', '太郎', 'IDE'), n('やまだ', 'たろう', 'SYL')], YAMADA.names)).toBe(
      'match',
    );
  });

  it('kana in katakana, half-width katakana or spaced match kana in hiragana', () => {
    expect(compareNames([n('ヤマダ', 'タロウ', 'SYL')], YAMADA.names)).toBe('match');
    expect(compareNames([n('ﾔﾏﾀﾞ', 'ﾀﾛｳ', 'SYL')], YAMADA.names)).toBe('match');
    expect(compareNames([n('やまだ　たろう', '', 'SYL')], YAMADA.names)).toBe('match');
    expect(foldText('ﾔﾏﾀﾞ　ﾀﾛｳ')).toBe(foldText('やまだたろう'));
  });

  it('without a use code the script decides the representation', () => {
    expect(compareNames([n('山田', '太郎')], YAMADA.names)).toBe('match');
    expect(compareNames([n('ヤマダ', 'タロウ')], YAMADA.names)).toBe('match');
  });

  it('never compares across representations: kanji are not their reading, kana are not romaji', () => {
    // The kana written where the kanji should be, the romaji as kana: no match.
    expect(compareNames([n('やまだ', 'たろう', 'IDE')], [n('山田', '太郎', 'IDE')])).toBe('conflict');
    expect(compareNames([n('Yamada', 'Tarou', 'ABC')], [n('山田', '太郎', 'IDE')])).toBe('unknown');
    expect(compareNames([n('yamada', 'tarou', 'SYL')], [n('やまだ', 'たろう', 'SYL')])).toBe('conflict');
  });

  it('a disagreeing kanji or kana refuses the match even when the other agrees', () => {
    // 山田 read さんだ is another person; 髙橋 and 高橋 are not folded together.
    expect(compareNames([n('山田', '太郎', 'IDE'), n('さんだ', 'たろう', 'SYL')], YAMADA.names)).toBe(
      'conflict',
    );
    expect(compareNames([n('髙橋', '一郎', 'IDE')], [n('高橋', '一郎', 'IDE')])).toBe('conflict');
  });

  it('romaji decides only when there is no kanji or kana to compare, case-insensitively', () => {
    expect(compareNames([n('YAMADA', 'TAROU', 'ABC')], YAMADA.names)).toBe('match');
    expect(compareNames([n('Yamada', 'Taro', 'ABC')], YAMADA.names)).toBe('conflict');
    // With kanji agreeing, a romanisation variant does not matter.
    expect(compareNames([n('山田', '太郎', 'IDE'), n('Yamada', 'Taro', 'ABC')], YAMADA.names)).toBe('match');
  });
});

describe('the other criteria', () => {
  it('birth date to the precision asked, gender without contradiction, postal code when both have one', () => {
    const kanji = [n('山田', '太郎', 'IDE')];
    expect(demographicsMatch(query(kanji), YAMADA)).toBe(true);
    expect(demographicsMatch(query(kanji, { birthTime: '19650313' }), YAMADA)).toBe(false);
    expect(demographicsMatch(query(kanji, { birthTime: '1965' }), YAMADA)).toBe(true);
    expect(demographicsMatch(query(kanji, { birthTime: '19650312093000' }), YAMADA)).toBe(true);
    expect(demographicsMatch(query(kanji, { gender: 'F' }), YAMADA)).toBe(false);
    expect(demographicsMatch(query(kanji, { gender: 'UN' }), YAMADA)).toBe(true);
    expect(
      demographicsMatch(
        query(kanji, { addresses: [{ streetAddressLine: [], postalCode: '１９０－０００１' }] }),
        YAMADA,
      ),
    ).toBe(true);
    expect(
      demographicsMatch(
        query(kanji, { addresses: [{ streetAddressLine: [], postalCode: '100-0001' }] }),
        YAMADA,
      ),
    ).toBe(false);
    expect(demographicsMatch(query([n('佐藤', '花子', 'IDE')]), YAMADA)).toBe(false);
  });

  it('a query with names needs a name that matches; one without names matches on the rest', () => {
    expect(demographicsMatch(query([n('Yamada', 'Tarou', 'XYZ'), n('山田', '太郎')]), YAMADA)).toBe(true);
    expect(demographicsMatch(query([]), YAMADA)).toBe(true);
    expect(demographicsMatch(query([n('山田', '太郎')]), { ...YAMADA, names: [] })).toBe(false);
  });
});
